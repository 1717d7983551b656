// Copies the npm-installed front-end files the portal serves into static/vendor (not committed).
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = {
  "bootstrap/dist/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
  "bootstrap/dist/js/bootstrap.bundle.min.js": "bootstrap/bootstrap.bundle.min.js",
  "chart.js/dist/chart.umd.js": "chart.js/chart.umd.js",
  "htmx.org/dist/htmx.min.js": "htmx/htmx.min.js",
};
for (const [from, to] of Object.entries(files)) {
  const target = join(root, "static", "vendor", to);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(root, "node_modules", from), target);
}
console.log(`static/vendor: ${Object.keys(files).length} files`);

// Copies the npm-installed front-end files the portal serves into static/vendor (not committed).
// Each file's source map comes along when the package ships one: the minified files end with a
// sourceMappingURL comment, and production's manifest storage (collectstatic) rewrites that reference
// to the hashed map's name, so a map that is referenced but missing fails the whole build. Copying
// keeps the vendor files byte-identical to the published ones (no edited third-party code) and
// browser devtools can still show the original source.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = {
  "bootstrap/dist/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
  "bootstrap/dist/js/bootstrap.bundle.min.js": "bootstrap/bootstrap.bundle.min.js",
  "chart.js/dist/chart.umd.js": "chart.js/chart.umd.js",
  "htmx.org/dist/htmx.min.js": "htmx/htmx.min.js",
};
let copied = 0;
for (const [from, to] of Object.entries(files)) {
  const target = join(root, "static", "vendor", to);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(root, "node_modules", from), target);
  copied += 1;
  const map = join(root, "node_modules", `${from}.map`);
  if (existsSync(map)) {
    cpSync(map, `${target}.map`);
    copied += 1;
  }
}
console.log(`static/vendor: ${copied} files`);

// Starts ReDoc on /api/redoc/ (an inline script would break the Content-Security-Policy). The nonce lets
// ReDoc's own <style> elements through the policy, on this page only.
(function () {
  "use strict";
  const container = document.getElementById("redoc-container");
  if (!container || !window.Redoc) return;
  window.Redoc.init(container.dataset.specUrl, { nonce: container.dataset.styleNonce }, container);
})();

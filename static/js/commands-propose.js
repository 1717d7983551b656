// The propose page: shows the fields of the chosen type and kind of targets, and a live risk preview from
// POST /api/v1/commands/preview (session cookie + the CSRF header) as the form changes: score, tier, who must
// approve, the breakdown and any refusal of the safety guards. The body is built exactly as the server's
// ProposeForm.proposal() builds it (hashinsight/portal/views/commands.py); the page holds every word shown
// here in data-labels, translated by the server.
(function () {
  "use strict";
  const form = document.querySelector("[data-propose-form]");
  if (!form) return;
  const panel = document.querySelector("[data-preview]");
  const labels = JSON.parse(form.dataset.labels);
  const zoneSites = JSON.parse(form.dataset.zoneSites || "{}");
  const field = (name) => form.querySelector(`[data-field="${name}"]`);
  const value = (name) => { const f = field(name); return f ? f.value.trim() : ""; };
  let timer = null;
  let inFlight = null;
  let sequence = 0;

  function utc(local) {
    return local && !local.endsWith("Z") ? `${local}Z` : local;
  }

  function body() {
    const type = value("type");
    let params = {};
    if (type === "POOL_SET") params = {url: value("pool_url"), worker: value("pool_worker")};
    else if (type === "SET_FAN") params = {percent: value("fan_percent") === "" ? null : Number(value("fan_percent"))};
    else if (type === "POWER_MODE") params = {mode: value("power_mode")};
    else if (type === "CURTAIL") {
      const by = value("curtail_by") || "kw";
      const amount = value(by === "kw" ? "curtail_kw" : "curtail_percent");
      params = {[by]: amount === "" ? null : amount, start: utc(value("curtail_start")), end: utc(value("curtail_end")),
                mode: value("curtail_mode") || "soft"};
    }
    const site = Number(value("site"));
    const kind = value("target_kind");
    let targets;
    if (kind === "zone") targets = {zone: value("zone") === "" ? null : Number(value("zone"))};
    else if (kind === "site") targets = {site: site};
    else targets = {serials: value("serials").split(/[\s,;]+/).filter((s) => s !== "")};
    return {site: site, type: type, params: params, targets: targets};
  }

  function show() {
    const type = value("type");
    form.querySelectorAll("[data-for-types]").forEach((el) => { el.hidden = !el.dataset.forTypes.split(" ").includes(type); });
    const by = value("curtail_by") || "kw";
    form.querySelectorAll("[data-for-curtail]").forEach((el) => { el.hidden = el.dataset.forCurtail !== by; });
    const kind = value("target_kind");
    form.querySelectorAll("[data-for-targets]").forEach((el) => { el.hidden = el.dataset.forTargets !== kind; });
    const site = value("site");
    const zone = field("zone");
    if (zone) {
      [...zone.options].forEach((option) => {
        if (option.value === "") return;
        option.hidden = String(zoneSites[option.value]) !== site;
      });
      if (zone.selectedOptions[0] && zone.selectedOptions[0].hidden) zone.value = "";
    }
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function tierClass(tier) {
    return {LOW: "text-bg-success", MEDIUM: "text-bg-warning", HIGH: "text-bg-danger"}[tier] || "text-bg-dark";
  }

  function who(p) {
    if (!p.approvals_required) return labels.nobody;
    if (p.owner_admin_only) return labels.two_admin;
    return p.approvals_required === 1 ? labels.one : labels.two;
  }

  function render(nodes, state) {
    const target = panel.querySelector("[data-preview-body]");
    const box = el("div");
    box.dataset.previewBody = "";
    box.dataset.state = state;
    box.dataset.testid = "preview-body";
    nodes.forEach((n) => box.appendChild(n));
    target.replaceWith(box);
  }

  function renderPreview(p) {
    const nodes = [];
    const head = el("p", undefined, "mb-2");
    const score = el("span", p.score, "fs-3 fw-semibold me-2");
    score.dataset.testid = "preview-score";
    const tier = el("span", labels.tiers[p.tier] || p.tier, "badge " + tierClass(p.tier));
    tier.dataset.testid = "preview-tier";
    tier.dataset.tier = p.tier;
    head.append(el("span", `${labels.score}: `, "text-secondary"), score, tier);
    nodes.push(head);
    const whoLine = el("p", undefined, "mb-2");
    const whoText = el("span", who(p));
    whoText.dataset.testid = "preview-who";
    whoLine.append(el("strong", `${labels.who}: `), whoText);
    nodes.push(whoLine);
    const facts = el("p", `${labels.targets}: ${p.target_count} · ${labels.power}: ${p.power_kw} ${labels.kw} · ` +
                          `${labels.revenue}: ${p.revenue_usd_per_day} ${labels.usd_day}`, "small text-secondary mb-2");
    facts.dataset.testid = "preview-facts";
    nodes.push(facts);
    if (p.curtail_plan) {
      const plan = p.curtail_plan;
      const counts = plan.counts || {};
      const line = el("p", `${labels.plan}: ${labels.requested} ${plan.requested_kw} ${labels.kw}, ` +
                           `${labels.planned} ${plan.planned_kw} ${labels.kw}, ${labels.shortfall} ${plan.shortfall_kw} ` +
                           `${labels.kw} · ${counts.power_target || 0} ${labels.power_targets}, ${counts.stop || 0} ` +
                           `${labels.stops}, ${counts.none || 0} ${labels.unchanged}`, "small mb-2");
      line.dataset.testid = "preview-plan";
      nodes.push(line);
    }
    if (p.refusals && p.refusals.length) {
      const warn = el("div", undefined, "alert alert-danger py-2");
      warn.setAttribute("role", "alert");
      warn.dataset.testid = "preview-refusals";
      warn.appendChild(el("div", labels.refused, "fw-semibold"));
      const list = el("ul", undefined, "mb-0");
      p.refusals.forEach((r) => list.appendChild(el("li", r.message)));
      warn.appendChild(list);
      nodes.push(warn);
    }
    const wrap = el("div", undefined, "table-responsive");
    const t = el("table", undefined, "table table-sm align-middle mb-0");
    t.dataset.testid = "preview-breakdown";
    const hr = el("tr");
    [labels.factor, labels.weight, labels.contribution].forEach((h, i) => {
      const th = el("th", h, i === 1 || i === 2 ? "text-end" : "");
      th.scope = "col";
      hr.appendChild(th);
    });
    const thead = el("thead");
    thead.appendChild(hr);
    t.appendChild(thead);
    const tb = el("tbody");
    ((p.breakdown || {}).breakdown || []).forEach((f) => {
      const tr = el("tr");
      tr.dataset.testid = "preview-factor";
      tr.dataset.factor = f.factor;
      const name = el("td", labels.factors[f.factor] || f.factor);
      name.appendChild(el("div", f.words, "small text-secondary"));
      tr.append(name, el("td", f.weight, "text-end"), el("td", f.contribution, "text-end"));
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    wrap.appendChild(t);
    nodes.push(wrap);
    render(nodes, p.refusals && p.refusals.length ? "refused" : "ok");
  }

  function renderError(problem) {
    const box = el("div", undefined, "alert alert-warning py-2 mb-0");
    box.dataset.testid = "preview-error";
    box.append(el("span", `${labels.error} `, "fw-semibold"), el("span", problem));
    render([box], "error");
  }

  async function preview() {
    const mine = ++sequence;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    panel.setAttribute("aria-busy", "true");
    let response;
    try {
      response = await fetch(form.dataset.previewUrl, {
        method: "POST", credentials: "same-origin", signal: inFlight.signal,
        headers: {"Content-Type": "application/json", "X-CSRFToken": token, "Accept": "application/json"},
        body: JSON.stringify(body()),
      });
    } catch (e) {
      if (e.name !== "AbortError" && mine === sequence) renderError(labels.failed);
      return;
    } finally {
      if (mine === sequence) panel.removeAttribute("aria-busy");
    }
    if (mine !== sequence) return;
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.ok && data) {
      renderPreview(data);
    } else if (data && data.message) {
      const where = data.details && data.details.field ? `${data.details.field}: ` : "";
      renderError(where + data.message);
    } else {
      renderError(labels.failed);
    }
  }

  function changed() {
    show();
    clearTimeout(timer);
    timer = setTimeout(preview, 350);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  show();
  preview();
})();

(function () {
  "use strict";
  // Progressive enhancement: combined filters, applied in place.  The page is complete without
  // this script (the pre-rendered filter-*.html pages cover single filters).
  var form = document.getElementById("filters");
  var dataEl = document.getElementById("report-data");
  if (!form || !dataEl) { return; }
  var data = JSON.parse(dataEl.textContent);
  var table = document.getElementById("matrix-table");
  var out = document.getElementById("filter-summary");
  var DIMS = ["family", "status", "oracle", "impl", "device", "dtype"];
  var F = {};
  data.fields.forEach(function (name, i) { F[name] = i; });
  var cases = data.cases;
  var statuses = data.dims.status;

  function css(s) { return s.replace(/[^A-Za-z0-9_-]/g, "_") || "_"; }
  function num(v) { return v === null ? null : Number(v); }
  function worseErr(a, b) {
    if (a === null) { return b; }
    if (b === null) { return a; }
    if (isNaN(a)) { return a; }
    if (isNaN(b)) { return b; }
    return Math.max(a, b);
  }
  function fmtErr(v) {
    if (v === null) { return ""; }
    if (isNaN(v)) { return "NaN"; }
    if (!isFinite(v)) { return v > 0 ? "Infinity" : "-Infinity"; }
    return v.toExponential(2);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function byRank(a, b) {
    var d = data.rank[b] - data.rank[a];
    if (d !== 0) { return d; }
    return statuses[a] < statuses[b] ? -1 : (statuses[a] > statuses[b] ? 1 : 0);
  }
  function badgeClass(s) {
    return "badge st-" + css(statuses[s]) + (data.known[s] ? "" : " unknown");
  }

  function renderCell(td, agg) {
    while (td.firstChild) { td.removeChild(td.firstChild); }
    if (!agg) {
      td.className = "cell empty";
      var dash = el("span", "muted", "\u2014");
      dash.title = "no cases";
      td.appendChild(dash);
      return;
    }
    var order = Object.keys(agg.counts).map(Number).sort(byRank);
    var worst = order[0];
    td.className = "cell st-" + css(statuses[worst]);
    var a = el("a", badgeClass(worst), statuses[worst]);
    a.href = td.getAttribute("data-href");
    td.appendChild(a);
    var counts = el("span", "counts");
    order.forEach(function (s) { counts.appendChild(el("span", "n", agg.counts[s] + " " + data.short[s])); });
    td.appendChild(counts);
    if (agg.abs !== null || agg.rel !== null) {
      td.appendChild(el("span", "errs", "abs " + (fmtErr(agg.abs) || "\u2013") + " \u00b7 rel " + (fmtErr(agg.rel) || "\u2013")));
    }
  }

  function selection() {
    var sel = {};
    DIMS.forEach(function (d) {
      var v = form.elements[d].value;
      if (v !== "") { sel[d] = data.dims[d].indexOf(v); }
    });
    return sel;
  }

  function apply() {
    var sel = selection();
    var keys = Object.keys(sel);
    var matched = new Uint8Array(cases.length);
    var aggs = {};
    var shown = 0;
    function add(key, c, s) {
      var agg = aggs[key] || (aggs[key] = { counts: {}, abs: null, rel: null });
      agg.counts[s] = (agg.counts[s] || 0) + 1;
      agg.abs = worseErr(agg.abs, num(c[F.abs]));
      agg.rel = worseErr(agg.rel, num(c[F.rel]));
    }
    for (var i = 0; i < cases.length; i++) {
      var c = cases[i];
      var ok = true;
      for (var k = 0; k < keys.length; k++) {
        if (c[F[keys[k]]] !== sel[keys[k]]) { ok = false; break; }
      }
      if (!ok) { continue; }
      matched[i] = 1;
      shown++;
      var s = c[F.status];
      var row = c[F.layer] + ":" + c[F.impl];  // a matrix row is one implementation of one layer
      add(row + ":" + c[F.check], c, s);
      add(row + ":all", c, s);
    }
    if (table) {
      var colHas = {};
      Array.prototype.forEach.call(table.querySelectorAll("tr.layer-row"), function (row) {
        var l = row.getAttribute("data-l") + ":" + row.getAttribute("data-i");
        var any = false;
        Array.prototype.forEach.call(row.querySelectorAll("td.cell"), function (td) {
          var col = td.getAttribute("data-c");
          var agg = aggs[l + ":" + col];
          renderCell(td, agg);
          if (agg && col !== "all") { any = true; colHas[col] = true; }
        });
        row.hidden = !any;
      });
      Array.prototype.forEach.call(table.querySelectorAll("[data-c]"), function (e) {
        var col = e.getAttribute("data-c");
        e.hidden = col !== "all" && !colHas[col];
      });
      Array.prototype.forEach.call(table.querySelectorAll("tbody.family-group"), function (tb) {
        tb.hidden = !tb.querySelector("tr.layer-row:not([hidden])");
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("tr[data-case]"), function (row) {
      row.hidden = !matched[Number(row.getAttribute("data-case"))];
    });
    showImpl(sel.impl);
    var desc = keys.map(function (d) { return d + " = " + data.labels[d][sel[d]]; }).join(", ");
    out.textContent = keys.length
      ? "Showing " + shown + " of " + cases.length + " cases (" + desc + ")" + (shown ? "." : ": nothing matches.")
      : "Showing all " + cases.length + " cases.";
  }

  // The implementation switch and the summary follow the implementation filter: the other
  // implementations' summary columns are hidden and their headline cards dimmed, not removed,
  // so the comparison stays one click away.
  function showImpl(impl) {
    var chosen = impl === undefined ? "" : String(impl);
    Array.prototype.forEach.call(document.querySelectorAll("#summary [data-i]"), function (e) {
      e.hidden = chosen !== "" && e.getAttribute("data-i") !== chosen;
    });
    Array.prototype.forEach.call(document.querySelectorAll(".impl-card"), function (card) {
      card.classList.toggle("unselected", chosen !== "" && card.getAttribute("data-i") !== chosen);
    });
    var raw = chosen === "" ? "" : data.dims.impl[Number(chosen)];
    Array.prototype.forEach.call(document.querySelectorAll("#impl-switch a.switch-option"), function (a) {
      if (a.getAttribute("data-impl") === raw) { a.setAttribute("aria-current", "true"); } else { a.removeAttribute("aria-current"); }
    });
  }

  function syncUrl() {
    var params = new URLSearchParams();
    DIMS.forEach(function (d) { if (form.elements[d].value !== "") { params.set(d, form.elements[d].value); } });
    var q = params.toString();
    try {
      history.replaceState(null, "", (q ? "?" + q : location.pathname) + location.hash);
    } catch (e) { /* file: URLs may refuse; filtering still works */ }
  }

  // Without this script the switch's links open the pre-rendered page of each implementation.
  Array.prototype.forEach.call(document.querySelectorAll("#impl-switch a.switch-option"), function (a) {
    a.addEventListener("click", function (ev) {
      var raw = a.getAttribute("data-impl");
      if (raw !== "" && data.dims.impl.indexOf(raw) < 0) { return; }
      ev.preventDefault();
      form.elements.impl.value = raw;
      apply();
      syncUrl();
    });
  });

  form.hidden = false;
  form.addEventListener("change", function () { apply(); syncUrl(); });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); apply(); syncUrl(); });
  form.addEventListener("reset", function () { setTimeout(function () { apply(); syncUrl(); }, 0); });
  var params = new URLSearchParams(location.search);
  DIMS.forEach(function (d) {
    var v = params.get(d);
    if (v !== null && data.dims[d].indexOf(v) >= 0) { form.elements[d].value = v; }
  });
  apply();
}());

(function () {
  'use strict';
  // azaudit report: filters and sorting for the findings table. Reads only the page itself; the
  // report works without this script (mail clients drop it). Sets the data-azaudit-ready attribute on
  // the root element once it ran, and data-azaudit-error when anything threw (checked by scripts/html-screenshot.sh).
  var root = document.documentElement;
  window.addEventListener('error', function (e) {
    root.setAttribute('data-azaudit-error', String((e && e.message) || 'error'));
  });
  var table = document.getElementById('findings-table');
  if (table) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var text = document.getElementById('f-text');
    var sev = document.getElementById('f-sev');
    var rule = document.getElementById('f-rule');
    var onlyNew = document.getElementById('f-new');
    var count = document.getElementById('f-count');
    var none = document.getElementById('f-none');
    var apply = function () {
      var t = text.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (tr) {
        var ok = (!t || tr.getAttribute('data-text').indexOf(t) >= 0) &&
          (!sev.value || tr.getAttribute('data-sev') === sev.value) &&
          (!rule.value || tr.getAttribute('data-rule') === rule.value) &&
          (!onlyNew || !onlyNew.checked || tr.getAttribute('data-new') === '1');
        tr.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown + ' of ' + rows.length + ' shown';
      none.hidden = shown !== 0;
    };
    [text, sev, rule, onlyNew].forEach(function (el) {
      if (el) {
        el.addEventListener('input', apply);
        el.addEventListener('change', apply);
      }
    });
    var heads = table.tHead.rows[0].cells;
    var sortBy = function (th, asc) {
      var i = th.cellIndex;
      var kind = th.getAttribute('data-sort');
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      rows.sort(function (a, b) {
        var x = a.cells[i].getAttribute('data-v') || '';
        var y = b.cells[i].getAttribute('data-v') || '';
        var c = kind === 'num' ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
        if (c === 0) { c = Number(a.getAttribute('data-i')) - Number(b.getAttribute('data-i')); }
        return asc ? c : -c;
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
    };
    Array.prototype.forEach.call(heads, function (th) {
      if (!th.getAttribute('data-sort')) { return; }
      th.tabIndex = 0;
      var toggle = function () { sortBy(th, th.getAttribute('aria-sort') !== 'ascending'); };
      th.addEventListener('click', toggle);
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); }
      });
    });
    // A link can carry a view: #sev=high&rule=...&q=...&new=1&sort=age&dir=desc.
    var params = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var eq = kv.indexOf('=');
      if (eq > 0) {
        try {
          params[decodeURIComponent(kv.slice(0, eq))] = decodeURIComponent(kv.slice(eq + 1));
        } catch (ignored) { /* a malformed link shows the default view */ }
      }
    });
    if (params.q) { text.value = params.q; }
    if (params.sev) { sev.value = params.sev; }
    if (params.rule) { rule.value = params.rule; }
    if (params['new'] === '1' && onlyNew) { onlyNew.checked = true; }
    if (params.sort) {
      Array.prototype.forEach.call(heads, function (th) {
        if (th.getAttribute('data-key') === params.sort && th.getAttribute('data-sort')) {
          sortBy(th, params.dir !== 'desc');
        }
      });
    }
    apply();
  }
  root.classList.add('js');
  // Whether the page fits its window without horizontal scrolling (the screenshot check reads it).
  root.setAttribute('data-azaudit-fits', root.scrollWidth <= root.clientWidth + 1 ? '1' : '0');
  root.setAttribute('data-azaudit-ready', '1');
}());

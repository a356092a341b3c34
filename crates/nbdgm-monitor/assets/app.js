// nbdgm monitor dashboard: relative times kept current, the overview fragment refreshed
// every 15 s without reloading the page, filters applied live and remembered.
(function () {
  'use strict';
  var REFRESH_MS = 15000;
  var KEY = 'nbdgm-monitor-filters';

  function relative(ms) {
    var s = Math.round((Date.now() - ms) / 1000);
    var ahead = s < 0;
    var a = Math.abs(s);
    if (a < 10) { return 'just now'; }
    var n, unit;
    if (a < 60) { n = a; unit = 's'; }
    else if (a < 3600) { n = Math.floor(a / 60); unit = 'min'; }
    else if (a < 86400) { n = Math.floor(a / 3600); unit = 'h'; }
    else { n = Math.floor(a / 86400); unit = 'd'; }
    return ahead ? 'in ' + n + ' ' + unit : n + ' ' + unit + ' ago';
  }

  function tick(root) {
    var list = (root || document).querySelectorAll('time[datetime]');
    for (var i = 0; i < list.length; i++) {
      var t = Date.parse(list[i].getAttribute('datetime'));
      if (!isNaN(t)) { list[i].textContent = relative(t); }
    }
  }

  var form = document.getElementById('filters');
  var live = document.getElementById('live');

  function query() {
    var p = new URLSearchParams();
    if (!form) { return ''; }
    var data = new FormData(form);
    data.forEach(function (v, k) { if (v !== '') { p.append(k, v); } });
    return p.toString();
  }

  function setForm(qs) {
    var p = new URLSearchParams(qs);
    for (var i = 0; i < form.elements.length; i++) {
      var el = form.elements[i];
      if (!el.name) { continue; }
      if (el.type === 'checkbox') { el.checked = p.get(el.name) === el.value; }
      else if (el.tagName === 'SELECT') { el.value = p.get(el.name) || ''; }
    }
  }

  var busy = false;
  var refreshes = 0;
  function refresh() {
    if (!live || busy) { return; }
    busy = true;
    var q = query();
    fetch(live.getAttribute('data-src') + (q ? '?' + q : ''), { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        live.innerHTML = html;
        refreshes += 1;
        live.setAttribute('data-refreshes', String(refreshes));
        var up = document.getElementById('updated');
        if (up) { up.setAttribute('datetime', new Date().toISOString().replace(/\.\d+Z$/, 'Z')); }
        var stale = document.getElementById('stale');
        if (stale) { stale.hidden = true; }
        var count = document.getElementById('violation-count');
        var n = count ? Number(count.textContent) : 0;
        document.title = (n > 0 ? n + (n === 1 ? ' violation' : ' violations') + ' · ' : '') + 'nbdgm monitor';
        tick(document);
      })
      .catch(function () {
        var stale = document.getElementById('stale');
        if (stale) { stale.hidden = false; }
      })
      .then(function () { busy = false; });
  }

  function applyFilters() {
    var q = query();
    try { localStorage.setItem(KEY, q); } catch (e) { /* storage off */ }
    history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
    refresh();
  }

  if (form && live) {
    form.addEventListener('change', applyFilters);
    form.addEventListener('submit', function (e) { e.preventDefault(); applyFilters(); });
    var stored = null;
    try { stored = localStorage.getItem(KEY); } catch (e) { /* storage off */ }
    if (!location.search && stored) { setForm(stored); applyFilters(); }
    setInterval(refresh, REFRESH_MS);
  }
  tick(document);
  setInterval(function () { tick(document); }, 30000);
}());

//! What the HTML pages need, served from the binary (no CDN): one style
//! sheet, and the chart script of `/vars`.

/// The style of every HTML page.
pub(crate) const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ee; --bg:#f7f8fb; --accent:#2f6fed; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
nav { display:flex; flex-wrap:wrap; gap:4px; padding:10px 20px; background:#1d2330; }
nav a { color:#cfd6e6; text-decoration:none; padding:4px 10px; border-radius:4px; }
nav a:hover { background:#323a4d; color:#fff; }
nav a.brand { color:#fff; font-weight:600; margin-right:12px; }
main { padding:16px 24px 40px; max-width:1400px; }
h1 { font-size:22px; margin:8px 0 16px; }
h2 { font-size:16px; margin:24px 0 8px; color:#34405a; }
table { border-collapse:collapse; background:#fff; border:1px solid var(--line); }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left; font-variant-numeric:tabular-nums; }
table.grid th { background:#eef1f7; font-weight:600; }
table.grid td { text-align:right; }
table.grid td:first-child { text-align:left; }
table.kv th { background:#eef1f7; width:220px; font-weight:500; }
a { color:var(--accent); }
.var { cursor:pointer; }
.var:hover td { background:#f1f5ff; }
.chart { background:#fff; border:1px solid var(--line); margin:4px 0 12px; }
p.hint { color:var(--muted); }
table.sparks td { text-align:left; vertical-align:middle; }
canvas.spark { width:160px; height:32px; background:#fff; border:1px solid var(--line); vertical-align:middle; }
input[type=search] { padding:6px 10px; width:320px; border:1px solid var(--line); border-radius:4px; margin-bottom:10px; }
"#;

/// The chart code `/vars` and `/status` share: `fibrpcChart.draw(canvas,
/// series, compact)` draws a `?series` history (`compact`: a sparkline,
/// no axes or labels), `fibrpcChart.fetch(name, then)` gets one. Plain
/// canvas, no library.
pub(crate) const CHART_JS: &str = r#"
(function () {
  function fmt(v) {
    var a = Math.abs(v);
    if (a === 0) return '0';
    if (a < 1) return parseFloat(v.toPrecision(3)).toString();
    if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    return (Math.round(v * 100) / 100).toString();
  }
  function draw(canvas, series, compact) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * dpr; canvas.height = h * dpr;
    var g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    g.fillStyle = '#fff'; g.fillRect(0, 0, w, h);
    var pts = series.data || [];
    // A sparkline shows the last minute (the per-second points).
    if (compact) pts = pts.slice(-60);
    var left = 64, right = 12, top = 24, bottom = 26;
    if (compact) { left = 2; right = 2; top = 3; bottom = 2; }
    var pw = w - left - right, ph = h - top - bottom;
    g.font = '12px system-ui, sans-serif';
    g.fillStyle = '#34405a';
    if (!compact)
      g.fillText(series.label + (pts.length ? '  =  ' + fmt(pts[pts.length - 1][1]) : '  (no samples yet)'), left, 16);
    var min = Infinity, max = -Infinity;
    pts.forEach(function (p) { min = Math.min(min, p[1]); max = Math.max(max, p[1]); });
    if (!pts.length) { min = 0; max = 1; }
    if (min > 0) min = 0;
    if (max === min) max = min + 1;
    // Round grid steps (1, 2, 2.5 or 5 times a power of ten), about 4 of them.
    var raw = (max - min) / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; })
      .find(function (s) { return s >= raw; });
    min = Math.floor(min / step) * step; max = Math.ceil(max / step) * step;
    g.strokeStyle = '#e3e6ee'; g.lineWidth = 1; g.fillStyle = '#6b7385';
    for (var t = min; !compact && t <= max + step / 2; t += step) {
      var y = top + ph - ph * (t - min) / (max - min);
      g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
      g.fillText(fmt(t), 4, y + 4);
    }
    if (!compact) {
      g.fillText('older', left, h - 8);
      g.fillText('now', left + pw - 24, h - 8);
    }
    if (pts.length < 1) return;
    var n = Math.max(pts.length - 1, 1);
    function xy(k) {
      return [left + pw * k / n, top + ph - ph * (pts[k][1] - min) / (max - min)];
    }
    g.beginPath();
    var p0 = xy(0); g.moveTo(p0[0], top + ph); g.lineTo(p0[0], p0[1]);
    for (var k = 1; k < pts.length; k++) { var p = xy(k); g.lineTo(p[0], p[1]); }
    var pl = xy(pts.length - 1); g.lineTo(pl[0], top + ph); g.closePath();
    g.fillStyle = 'rgba(47,111,237,0.15)'; g.fill();
    g.beginPath(); g.moveTo(p0[0], p0[1]);
    for (k = 1; k < pts.length; k++) { p = xy(k); g.lineTo(p[0], p[1]); }
    g.strokeStyle = '#2f6fed'; g.lineWidth = compact ? 1.5 : 2; g.stroke();
    document.body.dataset.chartsDrawn = (parseInt(document.body.dataset.chartsDrawn || '0') + 1).toString();
  }
  function get(name, then) {
    fetch('/vars/' + encodeURIComponent(name) + '?series')
      .then(function (r) { return r.json(); })
      .then(then)
      .catch(function () {});
  }
  window.fibrpcChart = { draw: draw, fetch: get, fmt: fmt };
})();
"#;

/// `/vars` in a browser: the filter box, and a live chart under a clicked
/// variable (its `?series` history, redrawn every second, drawn by
/// [`CHART_JS`]).
pub(crate) const VARS_JS: &str = r#"
(function () {
  var charts = {};
  function refresh(name) {
    var c = charts[name];
    if (!c) return;
    fibrpcChart.fetch(name, function (s) { if (charts[name]) fibrpcChart.draw(c.canvas, s); });
  }
  function toggle(tr) {
    var name = tr.dataset.name;
    if (charts[name]) {
      clearInterval(charts[name].timer);
      charts[name].row.remove();
      delete charts[name];
      return;
    }
    var row = document.createElement('tr');
    var td = document.createElement('td');
    td.colSpan = 2;
    var canvas = document.createElement('canvas');
    canvas.className = 'chart';
    canvas.style.width = '100%'; canvas.style.height = '220px';
    td.appendChild(canvas); row.appendChild(td);
    tr.parentNode.insertBefore(row, tr.nextSibling);
    charts[name] = { row: row, canvas: canvas, timer: setInterval(function () { refresh(name); }, 1000) };
    refresh(name);
  }
  document.querySelectorAll('tr.var').forEach(function (tr) {
    tr.addEventListener('click', function () { toggle(tr); });
    if (tr.dataset.open) toggle(tr);
  });
  var f = document.getElementById('filter');
  if (f) f.addEventListener('input', function () {
    var q = f.value.toLowerCase();
    document.querySelectorAll('table.vars tr[data-name]').forEach(function (tr) {
      tr.style.display = tr.dataset.name.indexOf(q) >= 0 ? '' : 'none';
    });
  });
})();
"#;

/// `/status` in a browser: every `canvas.spark` is a sparkline of the
/// variable in its `data-var` (the last minute of its server-side
/// series), redrawn every second by [`CHART_JS`].
pub(crate) const STATUS_JS: &str = r#"
(function () {
  var sparks = document.querySelectorAll('canvas.spark');
  function refresh() {
    sparks.forEach(function (c) {
      fibrpcChart.fetch(c.dataset.var, function (s) {
        fibrpcChart.draw(c, s, true);
        var last = (s.data || []).slice(-1)[0];
        if (c.nextElementSibling) c.nextElementSibling.textContent = last ? fibrpcChart.fmt(last[1]) : '';
      });
    });
  }
  if (sparks.length) { refresh(); setInterval(refresh, 1000); }
})();
"#;

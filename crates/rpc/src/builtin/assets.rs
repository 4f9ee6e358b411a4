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
input[type=search] { padding:6px 10px; width:320px; border:1px solid var(--line); border-radius:4px; margin-bottom:10px; }
"#;

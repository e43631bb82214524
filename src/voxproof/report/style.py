"""The one stylesheet (and the one small script) of every voxproof HTML page.

Stage: report output. The run, compare, gate, audit and TTS pages (and later the serve and monitor
dashboards) all render through :mod:`voxproof.report.html`, which inlines :data:`CSS` in the page head;
:data:`SORT_JS` is added only to pages with a sortable table, so pages without one carry no script.
"""

from __future__ import annotations

CSS = """
:root{--ink:#1d232a;--muted:#5b6672;--line:#dde2e8;--soft:#f0f3f6;--bg:#f6f7f9;--accent:#17324d;
--bar:#4f7cac;--range:#9bb7d4;--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700;--info:#57606a}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);background:var(--bg);
line-height:1.4}
header{background:var(--accent);color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;display:flex;align-items:center;gap:12px;flex-wrap:wrap}
header p{margin:4px 0 0;opacity:.85;font-size:13px;overflow-wrap:anywhere}
main{padding:18px 28px;max-width:1400px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:0 0 16px;
overflow-x:auto}
h2{font-size:17px;margin:0 0 10px}h3{font-size:15px;margin:14px 0 6px}
p{margin:6px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:4px 0 8px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:130px;max-width:320px;background:#fff}
.card .v{font-size:20px;font-weight:600;overflow-wrap:anywhere}.card .l{font-size:12px;color:var(--muted)}
.card .s{font-size:11px;color:var(--muted);overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 10px}
th,td{border-bottom:1px solid #e7ebef;padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--soft);position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.txt{overflow-wrap:anywhere;max-width:560px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:6px 0;font-size:13px}
dl.kv dt{font-weight:600;color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:anywhere}
.ali span{padding:0 2px;border-radius:3px}
.S{background:#ffe08a}.D{background:#ffb3b3;text-decoration:line-through}.I{background:#a8d8ff}
.err{color:#a40000}.warn{color:var(--warn)}.muted{color:var(--muted)}.na{color:var(--muted);font-style:italic}
.bar{display:inline-block;height:10px;background:var(--bar);vertical-align:middle}
.ival{position:relative;height:14px;background:#eef1f4;border-radius:3px;min-width:160px}
.ival .r{position:absolute;top:3px;height:8px;background:var(--range);border-radius:2px}
.ival .p{position:absolute;top:0;width:2px;height:14px;background:var(--accent)}
.ival .z{position:absolute;top:0;width:1px;height:14px;background:#999}
.badge{display:inline-block;padding:2px 9px;border-radius:4px;color:#fff;font-size:12px;font-weight:600;
vertical-align:middle}
header .badge{font-size:15px;padding:3px 12px}
.b-pass{background:var(--pass)}.b-fail{background:var(--fail)}.b-warn{background:var(--warn)}
.b-info{background:var(--info)}.b-low{background:#2563eb}.b-medium{background:#d97706}.b-high{background:#dc2626}
.b-critical{background:#7f1d1d}.b-muted{background:#8c959f}
.figures{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:6px 0;max-width:100%}figure img{max-width:100%;border:1px solid var(--line);border-radius:4px}
figcaption{font-size:12px;color:var(--muted);max-width:520px}
img{max-width:100%}
details{margin:6px 0}details summary{cursor:pointer;color:var(--accent);font-weight:600}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:var(--soft);padding:8px;border-radius:4px}
code{font-size:12px;background:var(--soft);padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
ul{margin:6px 0;padding-left:22px}
td code{overflow-wrap:normal;white-space:nowrap}
audio{max-width:260px}
footer{padding:0 28px 24px;font-size:12px;color:var(--muted)}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0],rows=Array.from(body.rows),asc=th.dataset.asc!=='1';
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v!==undefined?a.cells[i].dataset.v:a.cells[i].textContent;
        var y=b.cells[i].dataset.v!==undefined?b.cells[i].dataset.v:b.cells[i].textContent;
        var nx=parseFloat(x),ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
      t.querySelectorAll('th').forEach(function(h){delete h.dataset.asc;});
      th.dataset.asc=asc?'1':'0';});});});
"""

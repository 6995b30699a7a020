"""The fixed parts of an HTML report page: column heads, SVG patterns, CSS and script.

Data, not logic: `plait.report_html` pastes these into every page as they are, so a
report stays one self-contained file (no network, nothing to fetch). They live in
Python strings rather than package data files so rendering reads no files.

The script re-lays the plot out to the window's width with the same formulas as
`plait.report_gantt` (`svg_rows`, `ticks`, `_edge_path`, `tick_label`, `TICK_STEPS`):
change both together. It also highlights a task's dependency lines on hover and
honours the legend's "dependency lines" checkbox.
"""

from __future__ import annotations

__all__ = ["CSS", "ESTIMATE_HEADS", "JS", "RUN_HEADS", "SVG_DEFS"]

# The number columns' heads: what a run reports per task, or what an estimate plans.
RUN_HEADS = (
    '<div class="colh num c3" title="attempts">tries</div>'
    '<div class="colh num c4" title="cost of all attempts">cost</div>'
    '<div class="colh num c5" title="time held by exclusions, conflicts, retries">lost</div>'
)
ESTIMATE_HEADS = (
    '<div class="colh num c3"></div><div class="colh num c4">estimate</div>'
    '<div class="colh num c5">start</div>'
)

# Fills that mark a bar's kind (retry, conflict, resume/fixer, rate limit) and the
# arrowhead of dependency lines, referenced by the CSS as url(#…).
SVG_DEFS = (
    "<defs>"
    '<pattern id="pat-retry" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="2.5" height="6" fill="#fff" opacity=".5"/>'
    "</pattern>"
    '<pattern id="pat-conflict" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<path d="M0 0L5 5M5 0L0 5" stroke="#fff" stroke-width="1.1" opacity=".6"/></pattern>'
    '<pattern id="pat-resume" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<rect width="1.6" height="5" fill="#fff" opacity=".55"/></pattern>'
    '<pattern id="pat-dots" width="4" height="4" patternUnits="userSpaceOnUse">'
    '<circle cx="2" cy="2" r="1" fill="#fff" opacity=".7"/></pattern>'
    '<marker id="arr" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="5" markerHeight="5" '
    'orient="auto"><path d="M0 0L6 3L0 6z" fill="#57606a"/></marker>'
    "</defs>"
)

CSS = """
*{box-sizing:border-box}
body{margin:0;font:12px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1f2328;background:#fff}
header{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid #d0d7de;
padding:6px 12px 0;box-shadow:0 2px 4px rgba(0,0,0,.06)}
h1{font-size:16px;margin:0;display:inline}h2{font-size:14px;margin:18px 0 6px}
.sub{color:#57606a;margin-left:10px}
.stats{display:flex;flex-wrap:wrap;gap:2px 18px;margin:4px 0}
.stat b{font-size:14px}.stat .dot{margin-right:4px}
.legend{display:flex;flex-wrap:wrap;gap:2px 14px;color:#444;margin-bottom:2px;align-items:center}
.legend span,.legend label{display:inline-flex;align-items:center;gap:4px;white-space:nowrap}
.grid{display:grid;grid-template-columns:var(--labw) minmax(0,1fr) 40px 62px 58px}
.axisrow{align-items:end}.colh{color:#57606a;font-weight:600;padding:0 6px 3px 0}
#axis text{font-size:11px;fill:#57606a}#axis line{stroke:#8c959f}
#axis text:not([text-anchor]){text-anchor:middle}
main{padding:0 12px 32px}.rows{grid-auto-rows:18px}
.c1{grid-column:1}.c2{grid-column:2}.c3{grid-column:3}.c4{grid-column:4}.c5{grid-column:5}
svg.c2{display:block;width:100%}
.lab{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:0 6px 0 2px;line-height:18px}
.lab.crit{font-weight:600}.cp{color:#b42318;margin-right:3px;font-size:10px}
.ag{color:#6e7781;font-weight:400;font-size:11px}
.num{text-align:right;padding-right:6px;line-height:18px;font-variant-numeric:tabular-nums;
color:#424a53;white-space:nowrap}
.odd{background:#f3f5f7}.stripe{fill:#f3f5f7}.hl{background:#fff4c2}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;
background:#8c959f}
#grid line{stroke:#d8dee4;stroke-width:1}
.bar{stroke:rgba(0,0,0,.25);stroke-width:.6}
.s-ok,.o-succeeded{fill:#2da44e;background:#2da44e}
.s-failed,.o-failed{fill:#cf222e;background:#cf222e}
.s-timeout{fill:#e16f24}.s-crashed{fill:#82071e}.s-errored,.o-errored{fill:#a4286a;background:#a4286a}
.s-rate_limited{fill:#8250df}.s-conflict,.o-conflicted{fill:#d4a72c;background:#d4a72c}
.s-cancelled,.o-cancelled,.o-skipped{fill:#8c959f;background:#8c959f}
.o-skipped{background:#d0d7de}.s-running,.o-running{fill:#0969da;background:#0969da}
.s-predicted{fill:#8ca2c4}.s-other{fill:#6e7781}.s-none{fill:#fff}
.o-pending{background:#8ca2c4}
.p-retry{fill:url(#pat-retry)}.p-conflict{fill:url(#pat-conflict)}
.p-resume,.p-fixer{fill:url(#pat-resume)}.p-rate_limit{fill:url(#pat-dots)}
.ov{pointer-events:none}
.k-conflict{stroke:#6b4e00;stroke-width:1.2;stroke-dasharray:3 2}
.k-retry{stroke:#24292f;stroke-width:1}
.bar.crit{stroke:#111;stroke-width:1.8}
.pred{fill:#57606a;opacity:.55}.note{font-size:10px;font-style:italic;fill:#57606a}
.wait{fill:#d8dee4;stroke:#57606a;stroke-width:.7;stroke-dasharray:2 2}
.bl{font-size:10px;font-weight:600;fill:#111;paint-order:stroke;stroke:#fff;stroke-width:2.5px;
stroke-linejoin:round;pointer-events:none}
.edge{fill:none;stroke:#57606a;stroke-width:.8;opacity:.35;marker-end:url(#arr)}
.edge.crit{stroke:#b42318;opacity:.8;stroke-width:1.2}
#plot.focus .edge{opacity:.06}#plot.focus .edge.hl{opacity:1;stroke-width:1.6}
#plot.noedges .edge{display:none}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left}
td+td{text-align:right;font-variant-numeric:tabular-nums}th{color:#57606a}
pre{white-space:pre-wrap;margin:2px 0 8px;background:#f6f8fa;padding:6px;max-height:12em;
overflow:auto}dt{font-weight:600}dd{margin-left:12px}
"""

JS = r"""
(()=>{const P=document.getElementById('plot'),A=document.getElementById('axis');
const D=P.dataset,PAD=+D.pad,MAX=+D.max,MINW=+D.minw,ROW=+D.row;
const STEPS=[0.1,0.2,0.5,1,2,5,10,15,30,60,120,300,600,900,1800,3600,7200];
const lab=t=>{if(t<60)return(+t.toFixed(1))+'s';const s=Math.round(t);
const two=n=>String(n).padStart(2,'0');
if(s<3600)return Math.floor(s/60)+'m'+(s%60?two(s%60):'');
const m=Math.floor(s%3600/60);return Math.floor(s/3600)+'h'+(m?two(m):'');};
const path=(x1,r1,x2,r2)=>{const y1=r1*ROW+ROW/2,y2=r2*ROW+ROW/2,xm=x2>=x1+6?x1+4:x1;
return 'M'+x1.toFixed(1)+' '+y1+'H'+xm.toFixed(1)+'V'+y2+'H'+x2.toFixed(1);};
function layout(){const w=Math.floor(P.getBoundingClientRect().width);if(w<60)return;
const k=(w-2*PAD)/MAX,X=t=>PAD+t*k;P.setAttribute('width',w);A.setAttribute('width',w);
P.querySelectorAll('[data-start]').forEach(e=>{const a=X(+e.dataset.start),
b=X(+e.dataset.end);e.setAttribute('x',a.toFixed(2));
e.setAttribute('width',Math.max(b-a,MINW).toFixed(2));});
P.querySelectorAll('.ov').forEach(e=>{const b=e.previousElementSibling;
e.setAttribute('x',b.getAttribute('x'));e.setAttribute('width',b.getAttribute('width'));});
P.querySelectorAll('text.bl').forEach(e=>{const d=e.dataset,a=X(+d.at),b=X(+d.to);
e.setAttribute('x',(a+3).toFixed(2));e.style.display=b-a>=+d.need?'':'none';});
P.querySelectorAll('text.note').forEach(e=>e.setAttribute('x',(X(+e.dataset.at)+3).toFixed(2)));
P.querySelectorAll('path.edge').forEach(e=>{const d=e.dataset;
e.setAttribute('d',path(X(+d.t1),+d.r1,X(+d.t2),+d.r2));});
const most=Math.max(2,(w-2*PAD)/90);let step=STEPS.find(s=>MAX/s<=most)||MAX/most;
let g='',ax='';for(let i=0;i<=Math.floor(MAX/step+1e-9);i++){const x=X(i*step).toFixed(1);
g+='<line x1="'+x+'" x2="'+x+'" y1="0" y2="'+P.getAttribute('height')+'"/>';
const an=i==0?' text-anchor="start"':+x>w-20?' text-anchor="end"':'';
ax+='<line x1="'+x+'" x2="'+x+'" y1="17" y2="24"/>';
ax+='<text x="'+x+'" y="13"'+an+'>'+lab(i*step)+'</text>';}
document.getElementById('grid').innerHTML=g;A.innerHTML=ax;D.laidOut=String(w);
const r=P.getBoundingClientRect();D.left=String(r.left+scrollX);D.top=String(r.top+scrollY);}
function focus(id){P.classList.toggle('focus',!!id);
P.querySelectorAll('text.note').forEach(e=>e.setAttribute('x',(X(+e.dataset.at)+3).toFixed(2)));
P.querySelectorAll('path.edge').forEach(e=>e.classList.toggle('hl',
!!id&&(e.dataset.from===id||e.dataset.to===id)));
document.querySelectorAll('.lab').forEach(e=>e.classList.toggle('hl',e.dataset.task===id));}
document.querySelector('main').addEventListener('mouseover',ev=>{
const el=ev.target.closest('[data-task]');focus(el?el.dataset.task:null);});
const cb=document.getElementById('showedges');
if(cb)cb.addEventListener('change',()=>P.classList.toggle('noedges',!cb.checked));
layout();addEventListener('resize',layout);})();
"""

"""Listening tests, stage 2: the self-contained HTML page a listener opens (no server, no network).

Audio is embedded (16 kHz 16-bit WAV, base64); the page knows only opaque item ids. A rating is
accepted after the clip was played (both clips for A/B); the order of items is shuffled per listener.
"Save answers" downloads ``answers-<listener>.json``, the file the listener sends back, in the
format ``listen.answers`` reads.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from voxproof.listen.design import ACR_LABELS, Design, degrade, load_clip

_CSS = """body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
.item{border:1px solid #ccc;border-radius:6px;padding:.8em;margin:1em 0}.item.done{border-color:#3a3}
.check{font-weight:600}label{margin-right:1em}button{padding:.4em 1em}audio{width:100%}
#status{font-weight:600}"""

_JS = r"""
const T = JSON.parse(document.getElementById('test').textContent);
const answers = {}; const played = {};
function el(tag, attrs, text){const e=document.createElement(tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(text)e.textContent=text;return e;}
function shuffle(a){for(let i=a.length-1;i>0;i--){const j=Math.floor(Math.random()*(i+1));[a[i],a[j]]=[a[j],a[i]];}return a;}
function player(id, side, media){const a=el('audio',{controls:'',preload:'none',src:T.media[media]});
  a.addEventListener('ended',()=>{played[id+side]=true;});return a;}
function record(id, value, box){answers[id]={value:value,time:new Date().toISOString()};box.classList.add('done');status();}
function status(){document.getElementById('status').textContent=Object.keys(answers).length+' of '+T.items.length+' answered';}
const list=document.getElementById('items'); const order=shuffle(T.items.slice());
order.forEach((it,n)=>{const box=el('div',{class:'item',id:it.id});
  box.appendChild(el('div',{},(n+1)+'. '+(it.kind.startsWith('ab')?'Which clip sounds more natural?':'How natural does this clip sound?')));
  if(it.instruction) box.appendChild(el('p',{class:'check'},it.instruction));
  if(it.kind.startsWith('ab')){['A','B'].forEach((s,k)=>{box.appendChild(el('div',{},s));box.appendChild(player(it.id,s,it.media[k]));});
    ['A','B'].forEach(s=>{const b=el('button',{type:'button'},s+' sounds more natural');
      b.onclick=()=>{if(!(played[it.id+'A']&&played[it.id+'B'])){alert('Play both clips to the end first.');return;}record(it.id,s,box);};box.appendChild(b);});
  } else {box.appendChild(player(it.id,'',it.media[0]));
    [5,4,3,2,1].forEach(v=>{const l=el('label',{});const r=el('input',{type:'radio',name:it.id,value:v});
      r.onclick=()=>{if(!played[it.id]){r.checked=false;alert('Play the clip to the end first.');return;}record(it.id,v,box);};
      l.appendChild(r);l.appendChild(document.createTextNode(' '+v+' '+T.labels[v]));box.appendChild(l);});}
  list.appendChild(box);});
status();
document.getElementById('save').onclick=()=>{const who=document.getElementById('listener').value.trim();
  if(!/^[A-Za-z0-9_.-]{1,64}$/.test(who)){alert('Enter a listener name: letters, digits, _ . - (up to 64).');return;}
  const out={type:'voxproof_listening_answers',schema:1,test_id:T.test_id,listener:who,simulated:false,
    headphones:document.getElementById('headphones').checked,user_agent:navigator.userAgent,submitted:new Date().toISOString(),
    answers:order.filter(it=>answers[it.id]).map((it,n)=>{const a=answers[it.id];
      return it.kind.startsWith('ab')?{item:it.id,choice:a.value,played:true,time:a.time}:{item:it.id,rating:a.value,played:true,time:a.time};})};
  const blob=new Blob([JSON.stringify(out,null,1)],{type:'application/json'});const a=el('a',{href:URL.createObjectURL(blob),download:'answers-'+who+'.json'});
  document.body.appendChild(a);a.click();a.remove();};
"""


def _wav_uri(samples, rate: int) -> str:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_page(design: Design, title: str = "Listening test") -> str:
    """The whole test as one HTML document (audio embedded)."""
    media: list[str] = []
    keys: dict[tuple[int, bool], int] = {}
    audio_cache = {}

    def media_index(clip: int, degraded: bool) -> int:
        if (clip, degraded) not in keys:
            if clip not in audio_cache:
                audio_cache[clip] = load_clip(design.clips[clip], design.options)
            audio = audio_cache[clip]
            if degraded:
                audio = degrade(audio, design.options.seed + clip)
            keys[(clip, degraded)] = len(media)
            media.append(_wav_uri(audio.samples, audio.sample_rate))
        return keys[(clip, degraded)]

    items = []
    for it in design.items:
        flags = it.degraded or (False,) * len(it.clips)
        entry = {"id": it.id, "kind": it.kind, "media": [media_index(c, d) for c, d in zip(it.clips, flags)]}
        if it.kind == "acr-check":
            entry["instruction"] = "Attention check: whatever you hear, rate this clip 1 (Bad)."
        elif it.kind == "ab-check":
            entry["instruction"] = "Attention check: one clip is buried in noise; choose the clean one."
        items.append(entry)
    data = {"test_id": design.test_id, "items": items, "media": media,
            "labels": {str(k): v for k, v in ACR_LABELS.items()}}
    payload = json.dumps(data).replace("</", "<\\/")
    n_acr = sum(1 for i in design.items if i.kind.startswith("acr"))
    n_ab = len(design.items) - n_acr
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Use headphones in a quiet room. There are {n_acr} clips to rate and {n_ab} pairs to compare; play each clip
to the end before answering. Rate how natural the speech sounds: 5 Excellent, 4 Good, 3 Fair, 2 Poor,
1 Bad (ITU-T P.808 absolute category rating). Some items are attention checks with a written instruction.</p>
<p><label>Your name or code <input id="listener" maxlength="64"></label>
<label><input type="checkbox" id="headphones"> I am wearing headphones</label></p>
<div id="items"></div>
<p id="status"></p><button id="save" type="button">Save answers</button>
<p>Send the downloaded answers file back to the person who gave you this test.</p>
<script id="test" type="application/json">{payload}</script>
<script>{_JS}</script></body></html>
"""


def write_page(design: Design, path: str | Path, title: str = "Listening test") -> Path:
    path = Path(path)
    path.write_text(render_page(design, title), encoding="utf-8")
    return path

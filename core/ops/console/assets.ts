/**
 * The console's only stylesheet and script, served from /console/assets/.
 * The script does two things: posts `data-post` forms as JSON with the
 * session's CSRF token (the engine's router reads JSON bodies only), and
 * polls the dashboard's live counts.
 */

export const CONSOLE_CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1d2733;background:#f5f7fa}
header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.2em;background:#1f3b57;color:#fff}
header nav{display:flex;gap:1em;align-items:center;flex:1}header a{color:#cfe3f7;text-decoration:none}
header a.active{color:#fff;font-weight:600;border-bottom:2px solid #fff}.who{margin-left:auto;color:#cfe3f7}
main{padding:1em 1.5em;max-width:1200px}h1{font-size:1.3em;margin:.2em 0 .8em}h2{font-size:1.1em;margin:1.2em 0 .5em}
table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:1em}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{background:#eef2f6;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.flash{padding:.5em .8em;background:#fde8e8;color:#8a1f1f;border:1px solid #f5b5b5}.ok{color:#1b7a3a}.bad{color:#b42318}.reused{font-size:.8em;padding:0 .3em;border:1px solid #d9a400;color:#7a5a00;background:#fff6d6;border-radius:3px}
form.search{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin-bottom:1em}form.search label{display:flex;flex-direction:column;font-size:.85em}
input,select,button{font:inherit;padding:.3em .5em}button{cursor:pointer}form.inline{display:inline}
.login{max-width:320px;background:#fff;padding:1.2em;border:1px solid #e3e8ee}.login label{display:block;margin-bottom:.6em}.login input{width:100%}
.tree ul{list-style:none;margin:0;padding-left:1.2em}.tree>ul{padding-left:0}.seg{font-weight:600;font-family:monospace}.fld{font-family:monospace}
.masked{color:#6b7785}.pager{display:flex;gap:1em}.cards{display:flex;gap:1em;flex-wrap:wrap;margin-bottom:1em}
.card{background:#fff;border:1px solid #e3e8ee;padding:.6em 1em;min-width:140px}.card b{display:block;font-size:1.6em}
svg.chart{background:#fff;border:1px solid #e3e8ee}svg.chart text{font-size:10px;fill:#4a5563}
body{font-family:system-ui,"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Microsoft YaHei",sans-serif}
.scroll{overflow-x:auto;max-width:100%;margin-bottom:1em}.scroll>table{margin-bottom:0}pre.scroll{background:#fff;padding:.5em;border:1px solid #e3e8ee}
#health-panel table{width:auto;min-width:50%}
td,th{white-space:nowrap}td.wrap{white-space:normal;min-width:12em}main{max-width:1400px}.fname{color:#3d5a80}.segname{color:#3d5a80;font-size:.9em}
.tree summary{cursor:pointer}.tree details>ul{padding-left:1.6em}.tree li{white-space:nowrap}
header a.lang{margin-left:.5em;padding:.1em .5em;border:1px solid #cfe3f7;border-radius:3px;white-space:nowrap}
header .menu{display:none;background:none;border:1px solid #cfe3f7;color:#fff;border-radius:3px}
main{min-width:0}p{overflow-wrap:anywhere}
@media (max-width:767px){
  header{flex-wrap:wrap;gap:.6em;padding:.5em .8em}header .menu{display:inline-block;margin-left:auto}
  header nav{display:none;flex-basis:100%;flex-direction:column;align-items:flex-start;gap:.5em}header.open nav{display:flex}
  .who{margin-left:0}main{padding:.8em}form.search label,form.search input,form.search select{width:100%}
  .cards{gap:.5em}.card{min-width:0;flex:1 1 40%}.login{max-width:100%}
}
`;

export const CONSOLE_JS = `
(function(){
  'use strict';
  var meta=document.querySelector('meta[name="csrf-token"]');
  var csrf=meta?meta.getAttribute('content'):'';
  var failed=document.body.getAttribute('data-failed')||'request failed';
  var menu=document.getElementById('menu');
  if(menu){menu.addEventListener('click',function(){var h=menu.parentNode;var open=h.classList.toggle('open');menu.setAttribute('aria-expanded',open?'true':'false');});}
  function flash(text){var f=document.getElementById('flash');if(!f)return;f.textContent=text;f.hidden=!text;}
  document.addEventListener('submit',function(ev){
    var form=ev.target;var url=form.getAttribute('data-post');if(!url)return;
    ev.preventDefault();
    var body={};new FormData(form).forEach(function(v,k){body[k]=String(v);});
    fetch(url,{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json','x-csrf-token':csrf},body:JSON.stringify(body)})
      .then(function(r){return r.json().catch(function(){return {message:failed+' (HTTP '+r.status+')'};}).then(function(j){return {ok:r.ok,j:j};});})
      .then(function(res){
        if(!res.ok){flash(res.j.message||failed);return;}
        if(res.j.redirect){location.href=res.j.redirect;return;}
        var t=form.getAttribute('data-target');
        if(t&&res.j.html!==undefined){document.getElementById(t).innerHTML=res.j.html;}
        flash('');
        if(res.j.notice){var n=document.getElementById('notice');if(n){n.textContent=res.j.notice;n.hidden=false;}}
      })
      .catch(function(e){flash(failed+': '+e.message);});
  });
  var live=document.querySelector('[data-live]');
  if(live){
    var tick=function(){
      fetch(live.getAttribute('data-live'),{credentials:'same-origin'}).then(function(r){return r.ok?r.json():null;}).then(function(j){
        if(!j)return;
        document.querySelectorAll('[data-k]').forEach(function(el){
          var v=j;el.getAttribute('data-k').split('.').forEach(function(p){v=(v==null)?undefined:v[p];});
          el.textContent=(v===undefined||v===null)?'0':String(v);
        });
      }).catch(function(){});
    };
    tick();setInterval(tick,Number(live.getAttribute('data-interval')||'2000'));
  }
})();
`;

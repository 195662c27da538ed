/// The dashboard's stylesheet and its one script, compiled into the binary: nothing is fetched from elsewhere.
public enum DashboardAssets {
    public static let files: [String: (contentType: String, text: String)] = [
        "style.css": ("text/css; charset=utf-8", style),
        "live.js": ("text/javascript; charset=utf-8", live),
    ]

    static let style = """
        :root { --ok: #1a7f37; --bad: #cf222e; --run: #9a6700; --idle: #57606a; --bg: #fff; --fg: #1f2328; --line: #d0d7de; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
        header nav { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; flex: 1; }
        header ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
        .brand { font-weight: 700; text-decoration: none; color: inherit; }
        [aria-current=page] { font-weight: 700; }
        .signout { margin-left: auto; }
        main { padding: 1rem; max-width: 120rem; margin: 0 auto; }
        a:focus, button:focus, input:focus, select:focus { outline: 3px solid #0969da; outline-offset: 2px; }
        table { border-collapse: collapse; width: 100%; }
        th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
        thead th { background: #f6f8fa; }
        .scroll { overflow-x: auto; }
        caption { text-align: left; font-weight: 600; padding: .25rem 0; }
        .mono, pre { font-family: ui-monospace, monospace; font-size: .9em; }
        pre.log { background: #f6f8fa; padding: .5rem; overflow-x: auto; white-space: pre-wrap; max-height: 30rem; }
        .status { font-weight: 600; }
        .s-succeeded, .s-ok, .s-delivered, .s-online, .c-succeeded { color: var(--ok); }
        .s-failed, .s-stopped, .s-alarm, .s-quiet, .c-failed { color: var(--bad); }
        .s-inprogress, .s-running, .s-pending, .s-baking, .s-ready, .c-inprogress { color: var(--run); }
        td.cell small { display: block; color: var(--idle); }
        td.c-succeeded { background: #dafbe1; } td.c-failed { background: #ffebe9; } td.c-inprogress { background: #fff8c5; }
        .error { border: 1px solid var(--bad); background: #ffebe9; padding: .5rem; margin: .5rem 0; }
        .facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: .25rem 1rem; }
        .facts dt { font-weight: 600; } .facts dd { margin: 0; overflow-wrap: anywhere; }
        .button, button { display: inline-block; padding: .35rem .8rem; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa;
            color: inherit; text-decoration: none; font: inherit; cursor: pointer; }
        .filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: 1rem; }
        .signin { max-width: 24rem; } .signin label { display: block; font-weight: 600; } .signin input { width: 100%; padding: .4rem; font: inherit; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        @media (max-width: 40rem) { body { font-size: 15px; } h1 { font-size: 1.4rem; } main { padding: .5rem; } th, td { padding: .2rem .3rem; } }
        @media (min-width: 160rem) { body { font-size: 20px; } }
        """

    /// Follows the deployment on the page through the server's event stream and fetches the changed part when an
    /// event arrives (a read of the same page, never a reload); without JavaScript the page is the same, just still.
    static let live = """
        "use strict";
        (function () {
          var section = document.getElementById("live");
          if (!section || !window.EventSource) { return; }
          var id = section.getAttribute("data-deployment");
          var pending = null;
          function refresh() {
            pending = null;
            fetch(location.pathname + "?part=live", { credentials: "same-origin", cache: "no-store" })
              .then(function (answer) { return answer.ok ? answer.text() : null; })
              .then(function (html) { if (html !== null) { section.innerHTML = html; section.setAttribute("data-updated", String(Date.now())); } })
              .catch(function () {});
          }
          var stream = new EventSource("/events?deploymentId=" + encodeURIComponent(id));
          stream.onmessage = function () { if (!pending) { pending = setTimeout(refresh, 150); } };
          stream.onopen = function () { section.setAttribute("data-following", "yes"); };
        })();
        """
}

import FerryCore

/// The demo page's stylesheet, inlined so the page is one self-contained response. Light and dark
/// follow the system; narrow screens stack the path and the room vertically. Its hash goes into the
/// page's Content-Security-Policy, so it is kept free of anything computed.
enum DemoPageStyle {
    static let css = #"""
    :root {
      color-scheme: light dark;
      --bg: #f4f6f8; --panel: #ffffff; --ink: #1c2128; --muted: #59636e; --line: #d6dbe1;
      --accent: #0a66c2; --accent-ink: #ffffff; --mine: #e7f0fa; --ok: #1a7f37; --wait: #9a6700; --bad: #c6282f;
      --name-light: 36%;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #0e1116; --panel: #161b22; --ink: #e6edf3; --muted: #9ba6b2; --line: #2d3540;
        --accent: #4ca3ff; --accent-ink: #07111d; --mine: #132a42; --ok: #3fb950; --wait: #d29922; --bad: #ff6b66;
        --name-light: 72%;
      }
    }
    * { box-sizing: border-box; }
    [hidden] { display: none !important; }
    body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    .wrap { max-width: 70rem; margin: 0 auto; padding: 1.25rem 1rem 2rem; }
    code, pre { font: 0.8125rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
    .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
    :focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }

    .top { display: flex; flex-wrap: wrap; gap: 0.75rem 1.5rem; align-items: flex-start; justify-content: space-between; }
    h1 { margin: 0; font-size: 1.6rem; letter-spacing: -0.01em; }
    h1 span { color: var(--muted); font-weight: 500; }
    .lede { margin: 0.25rem 0 0; color: var(--muted); max-width: 44rem; }
    .status { display: inline-flex; align-items: center; gap: 0.5rem; margin: 0; padding: 0.3rem 0.8rem; border: 1px solid var(--line);
      border-radius: 999px; background: var(--panel); font-size: 0.875rem; font-weight: 600; white-space: nowrap; }
    .status::before { content: ""; width: 0.6rem; height: 0.6rem; border-radius: 50%; background: var(--muted); }
    .status[data-state="connected"]::before { background: var(--ok); }
    .status[data-state="connecting"]::before, .status[data-state="reconnecting"]::before { background: var(--wait); animation: blink 1s infinite; }
    .status[data-state="naming"]::before { background: var(--bad); }
    @keyframes blink { 50% { opacity: 0.25; } }

    .path { margin: 1.25rem 0; padding: 1rem; background: var(--panel); border: 1px solid var(--line); border-radius: 12px; }
    .path h2 { margin: 0 0 0.75rem; }
    .path ol { list-style: none; margin: 0; padding: 0; display: grid; grid-template-columns: auto minmax(9rem, 1.4fr) auto minmax(6rem, 1fr) auto minmax(6rem, 1fr) auto; align-items: center; }
    .node { padding: 0.5rem 0.75rem; min-width: 8rem; text-align: center; background: var(--bg); border: 1px solid var(--line); border-radius: 10px; }
    .node strong { display: block; }
    .node small { display: block; color: var(--muted); }
    .node.here { border-color: var(--accent); box-shadow: 0 0 0 1px var(--accent) inset; }
    .edge { min-width: 6.5rem; padding: 0 0.4rem; text-align: center; font-size: 0.8125rem; color: var(--muted); }
    .edge .proto { display: block; color: var(--ink); font-weight: 600; }
    .edge .detail { display: block; font-variant-numeric: tabular-nums; }
    .edge .detail code { overflow-wrap: anywhere; }
    .counts span { display: block; white-space: nowrap; }
    .edge b { color: var(--ink); font-weight: 600; }
    .wire { display: block; position: relative; height: 2px; margin: 0.3rem 0; background: var(--line); }
    .wire::after { content: ""; position: absolute; top: -3px; left: 0; width: 8px; height: 8px; border-radius: 50%; background: var(--accent); opacity: 0; }
    .edge.out .wire::after { animation: along 0.7s ease-in-out; }
    .edge.in .wire::after { animation: along 0.7s ease-in-out reverse; }
    @keyframes along { from { left: 0; opacity: 1; } to { left: calc(100% - 8px); opacity: 1; } }

    h2 { margin: 0 0 0.5rem; font-size: 0.8125rem; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); }
    .room { display: grid; grid-template-columns: minmax(0, 1fr) 20rem; gap: 1rem; align-items: start; }
    .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 12px; }
    .chat { display: flex; flex-direction: column; overflow: hidden; }
    .log { list-style: none; margin: 0; padding: 0.6rem; height: clamp(16rem, 52vh, 30rem); overflow-y: auto; }
    .log:empty::before { content: "Pick a name and join; messages show up here."; display: block; padding: 2rem 1rem; text-align: center; color: var(--muted); }
    .msg { display: flex; gap: 0.5rem; align-items: baseline; padding: 0.3rem 0.55rem; border-radius: 8px; }
    .msg + .msg { margin-top: 0.15rem; }
    .who { flex: none; font-weight: 650; color: hsl(var(--hue, 210) 60% var(--name-light)); }
    .who::after { content: ":"; }
    .text { flex: 1; min-width: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
    .msg time { flex: none; margin-left: auto; font-size: 0.75rem; color: var(--muted); font-variant-numeric: tabular-nums; }
    .mine { background: var(--mine); }
    .mine .who { color: var(--accent); }
    .notice { color: var(--muted); font-size: 0.875rem; font-style: italic; }
    form { display: flex; flex-wrap: wrap; gap: 0.5rem; padding: 0.75rem; border-top: 1px solid var(--line); }
    .join { border-top: 0; border-bottom: 1px solid var(--line); align-items: center; }
    .join label { font-weight: 600; }
    input { flex: 1; min-width: 0; padding: 0.55rem 0.7rem; font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; }
    button { padding: 0.55rem 1.1rem; font: inherit; font-weight: 600; color: var(--accent-ink); background: var(--accent); border: 0; border-radius: 8px; cursor: pointer; }
    button:disabled, input:disabled { opacity: 0.55; cursor: default; }
    .problem { flex-basis: 100%; margin: 0; color: var(--bad); font-size: 0.875rem; }
    .problem:empty { display: none; }

    .side { display: grid; gap: 1rem; min-width: 0; }
    .side .panel { min-width: 0; padding: 0.9rem 1rem; }
    .roster { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.3rem; }
    .roster li { display: flex; align-items: center; gap: 0.5rem; overflow-wrap: anywhere; }
    .roster li::before { content: ""; flex: none; width: 0.55rem; height: 0.55rem; border-radius: 50%; background: hsl(var(--hue, 210) 60% var(--name-light)); }
    .roster .you { font-size: 0.75rem; color: var(--muted); }
    .roster:empty::before { content: "Nobody yet."; color: var(--muted); }
    .count { font-variant-numeric: tabular-nums; }
    .side p { margin: 0.5rem 0; }
    .side pre { margin: 0.4rem 0; padding: 0.5rem 0.6rem; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; white-space: pre; }
    .small { font-size: 0.8125rem; color: var(--muted); }

    @media (max-width: 860px) {
      .room { grid-template-columns: minmax(0, 1fr); }
      .path ol { grid-template-columns: minmax(0, 1fr); justify-items: stretch; }
      .edge { display: grid; grid-template-columns: 1fr auto 1fr; align-items: center; gap: 0.75rem; padding: 0.15rem 0; text-align: left; }
      .edge .proto { text-align: right; }
      .wire { width: 2px; height: 2.4rem; margin: 0; }
      .wire::after { left: -3px; top: 0; }
      @keyframes along { from { top: 0; opacity: 1; } to { top: calc(100% - 8px); opacity: 1; } }
      .edge.out .wire::after, .edge.in .wire::after { left: -3px; }
    }
    @media (prefers-reduced-motion: reduce) {
      .edge .wire::after, .status::before { animation: none !important; }
    }
    """#
}

import FerryCore

/// The demo page's script: joins the chat over a WebSocket to `/chat`, which Ferry relays to the TCP
/// chat service unchanged, so it speaks the service's own line protocol (first line: the name) and
/// reads the service's lines by the shapes ``ChatText`` gives them. Text from others is only ever set
/// as `textContent`, never parsed as HTML. Its hash goes into the page's Content-Security-Policy, so it
/// is kept free of anything computed: what differs per run (addresses) is in the markup.
enum DemoPageScript {
    static let js = #"""
    "use strict";
    (() => {
      const $ = (id) => document.getElementById(id);
      const statusLine = $("status"), spokenStatus = $("status-spoken"), log = $("log"), roster = $("roster"), count = $("count");
      const joinForm = $("join"), nameInput = $("name"), nameProblem = $("name-problem");
      const sayForm = $("say"), textInput = $("text"), sendButton = $("send");
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat";
      const encoder = new TextEncoder();
      const bytes = { sent: 0, received: 0 };
      const people = new Set();
      let socket = null, decoder = null, pending = "";
      let myName = "", wanted = false, joined = false, everJoined = false, attempt = 0, retryTimer = 0;

      $("ws-url").textContent = url.replace(/^wss?:\/\//, "");
      $("relay-address").textContent = location.host;
      nameInput.value = "guest-" + (100 + Math.floor(Math.random() * 900));

      // The pill counts down every second; screen readers hear only changes of state.
      function setStatus(state, text) {
        statusLine.dataset.state = state;
        statusLine.textContent = text;
        if (spokenStatus.dataset.state !== state) {
          spokenStatus.dataset.state = state;
          spokenStatus.textContent = state === "reconnecting" ? "connection lost, reconnecting" : text;
        }
      }

      function size(n) {
        if (n < 1024) return n + " B";
        if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
        return (n / 1048576).toFixed(1) + " MiB";
      }

      function showBytes() { $("sent").textContent = size(bytes.sent); $("received").textContent = size(bytes.received); }

      // A dot runs along the WebSocket and Ferry-to-service legs, the way the bytes went.
      function pulse(direction) {
        for (const id of ["edge-ws", "edge-tcp"]) {
          const edge = $(id);
          edge.classList.remove("in", "out");
          void edge.offsetWidth;
          edge.classList.add(direction);
        }
      }

      function hue(name) {
        let h = 0;
        for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
        return h;
      }

      function add(kind, who, text) {
        const item = document.createElement("li");
        item.className = "msg " + kind;
        if (who) {
          const name = document.createElement("span");
          name.className = "who";
          name.textContent = who;
          name.style.setProperty("--hue", hue(who));
          item.append(name);
        }
        const body = document.createElement("span");
        body.className = "text";
        body.textContent = text;
        const now = new Date(), time = document.createElement("time");
        time.dateTime = now.toISOString();
        time.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        item.append(body, time);
        const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
        log.append(item);
        while (log.children.length > 500) log.firstElementChild.remove();
        if (atBottom || kind === "mine") log.scrollTop = log.scrollHeight;
      }

      function showRoster() {
        const names = [...people].sort((a, b) => a.toLowerCase() < b.toLowerCase() ? -1 : 1);
        roster.replaceChildren(...names.map((name) => {
          const item = document.createElement("li");
          item.dataset.name = name;
          item.style.setProperty("--hue", hue(name));
          item.append(name);
          if (name === myName) {
            const you = document.createElement("span");
            you.className = "you";
            you.textContent = "(you)";
            item.append(" ", you);
          }
          return item;
        }));
        count.textContent = people.size;
      }

      function enableChat(on) {
        textInput.disabled = !on;
        sendButton.disabled = !on;
        if (on && (document.activeElement === document.body || document.activeElement === null)) textInput.focus();
      }

      // One line from the chat service. Its own lines start with "* " (no name can).
      function onLine(line) {
        if (!line.startsWith("* ")) {
          const colon = line.indexOf(": ");
          if (colon > 0) add("said", line.slice(0, colon), line.slice(colon + 2));
          else add("notice", "", line);
          return;
        }
        const text = line.slice(2);
        let match;
        if ((match = /^(.+) joined$/.exec(text))) {
          people.add(match[1]); showRoster(); add("notice", "", text);
        } else if ((match = /^(.+) left$/.exec(text))) {
          people.delete(match[1]); showRoster(); add("notice", "", text);
        } else if ((match = /^Here now \(\d+\): (.*)$/.exec(text))) {
          people.clear();
          for (const name of match[1].split(", ")) if (name) people.add(name);
          showRoster(); add("notice", "", text);
        } else if (text.startsWith("You are ")) {
          joined = true; attempt = 0;
          setStatus("connected", "connected as " + myName);
          add("notice", "", (everJoined ? "Rejoined as " : "You joined as ") + myName + ".");
          everJoined = true;
          enableChat(true);
        } else if (text.endsWith("; try another name:")) {
          nameProblem.textContent = text.slice(0, -"; try another name:".length) + ".";
          setStatus("naming", "pick another name");
          wanted = false;  // if the service gives up on us, wait for a new name rather than retry this one
          joinForm.hidden = false;
          nameInput.focus();
        } else if (text.startsWith("What is your name?")) {
          // Answered already: the name went out as soon as the socket opened.
        } else if (!(everJoined && text.startsWith("Welcome"))) {
          add("notice", "", text);
        }
      }

      function send(text) {
        const data = encoder.encode(text);
        socket.send(data);
        bytes.sent += data.byteLength;
        showBytes();
        pulse("out");
      }

      function connect() {
        clearTimeout(retryTimer);
        setStatus("connecting", everJoined ? "reconnecting…" : "connecting…");
        decoder = new TextDecoder();
        pending = "";
        const ws = new WebSocket(url, ["binary"]);
        ws.binaryType = "arraybuffer";
        socket = ws;
        ws.onopen = () => send(myName + "\n");
        ws.onmessage = (event) => {
          if (ws !== socket) return;
          bytes.received += event.data.byteLength;
          showBytes();
          pulse("in");
          pending += decoder.decode(event.data, { stream: true });
          let newline;
          while ((newline = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, newline);
            pending = pending.slice(newline + 1);
            onLine(line);
          }
        };
        ws.onclose = () => {
          if (ws !== socket) return;
          socket = null;
          joined = false;
          enableChat(false);
          if (wanted) retry(); else setStatus("idle", "not connected");
        };
      }

      // Waits 1, 2, 4, 8, 16, then 30 s between attempts, counting down where it can be seen.
      function retry() {
        let left = Math.min(30, 2 ** Math.min(attempt, 5));
        attempt += 1;
        const tick = () => {
          if (left <= 0) { connect(); return; }
          setStatus("reconnecting", "reconnecting in " + left + " s");
          left -= 1;
          retryTimer = setTimeout(tick, 1000);
        };
        tick();
      }

      joinForm.addEventListener("submit", (event) => {
        event.preventDefault();
        const name = nameInput.value.trim();
        if (!name) { nameProblem.textContent = "A name cannot be empty."; nameInput.focus(); return; }
        myName = name;
        wanted = true;
        nameProblem.textContent = "";
        joinForm.hidden = true;
        if (socket && socket.readyState === WebSocket.OPEN && !joined) send(name + "\n");
        else if (!socket) { attempt = 0; connect(); }
      });

      sayForm.addEventListener("submit", (event) => {
        event.preventDefault();
        const text = textInput.value.trim();
        if (!text || !joined) return;
        send(text + "\n");
        add("mine", myName, text);
        textInput.value = "";
      });

      enableChat(false);
      nameInput.focus();
    })();
    """#
}

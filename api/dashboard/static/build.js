// Follows one build's events (server-sent: GET /api/builds/{id}/events) and renders each once.
// The browser's EventSource reconnects by itself and resends the last id it saw, so the server
// resumes after it; a stream opened anew asks for the events after the last one shown (`after`),
// and any id seen already is dropped here all the same.
// Event data holds model output: it only ever enters the page as text (textContent).
(() => {
  "use strict";
  const root = document.getElementById("build");
  if (!root) return;

  const KINDS = ["phase", "turn", "tool_call", "command", "output", "cost", "pull_request", "iteration"];
  const RETRY_MS = 5000; // after the server refused the stream (EventSource gives up on a 5xx)
  const SHOWN = 4000; // characters of a turn's text or a tool's result shown in the activity
  const ATTENTION = {
    awaiting_approval: ["The plan waits for your approval.", "#plan", "Review the plan"],
    awaiting_budget: ["The budget ran out: the next call needs more.", "#budget", "Extend the budget"],
    in_review: ["The pull request is open.", "#pull-request", "See its diff"],
    on_hold: ["The build is on hold until the account's payment goes through.", null, null],
    failed: ["The build failed.", "#overview", "See why"],
  };

  const $ = (id) => document.getElementById(id);
  const commands = new Map(); // command_id -> its block
  let lastId = 0;
  let source = null;
  let ended = false;

  function node(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  function clip(text) {
    const s = String(text ?? "");
    return s.length > SHOWN ? s.slice(0, SHOWN) + " …" : s;
  }

  function usd(amount) {
    const n = Number(amount) || 0;
    return Math.abs(n) >= 1 ? "$" + n.toFixed(2) : "$" + n.toFixed(4);
  }

  // Appends to a scroll container; follows the newest only if the reader was already there.
  function append(container, child, into) {
    const atEnd = container.scrollHeight - container.scrollTop - container.clientHeight < 48;
    (into || container).appendChild(child);
    if (atEnd) container.scrollTop = container.scrollHeight;
  }

  function entry(id, kind, tag) {
    const li = node("li", "ev ev-" + kind);
    li.dataset.eventId = id;
    li.dataset.kind = kind;
    li.appendChild(node("span", "tag", tag));
    return li;
  }

  function announce(name) {
    document.body.dispatchEvent(new CustomEvent(name));
  }

  function setPhase(status) {
    const phase = $("phase");
    phase.textContent = status;
    phase.className = "status s-" + status;
    root.dataset.status = status;
    const slot = $("attention");
    slot.replaceChildren();
    const said = ATTENTION[status];
    if (!said) return;
    slot.appendChild(node("span", null, said[0] + " "));
    if (said[1]) {
      const link = node("a", null, said[2]);
      link.href = said[1];
      slot.appendChild(link);
    }
  }

  function setStep(step) {
    const cell = $("step");
    if (step === null || step === undefined || cell.dataset.step === String(step)) return;
    cell.dataset.step = String(step);
    cell.textContent = "step " + step;
    announce("build-cost"); // the overview brings the step's title
  }

  const render = {
    phase(d, id) {
      setPhase(d.status);
      $("spent").textContent = usd(d.cost_usd);
      const li = entry(id, "phase", "phase");
      li.appendChild(node("strong", null, d.status));
      if (d.attempt) li.appendChild(node("span", "muted", " · test runs " + d.attempt));
      if (d.error) li.appendChild(node("p", "err", clip(d.error)));
      append($("activity"), li);
      announce("build-changed");
    },
    turn(d, id) {
      setStep(d.step);
      const li = entry(id, "turn", d.role);
      const where = d.step ? "step " + d.step + " · " : "";
      li.appendChild(node("span", "muted", where + d.model + " · " + usd(d.cost_usd)));
      if (d.text) li.appendChild(node("p", null, clip(d.text)));
      const calls = (d.tool_calls || []).map((call) => call.name);
      if (calls.length) li.appendChild(node("p", "muted", "calls " + calls.join(", ")));
      append($("activity"), li);
    },
    tool_call(d, id) {
      setStep(d.step);
      const li = entry(id, "tool_call", "tool");
      if (d.is_error) li.classList.add("error");
      li.appendChild(node("strong", null, d.name));
      if (d.summary) li.appendChild(node("span", null, " " + d.summary));
      if (d.result) {
        const more = node("details");
        more.appendChild(node("summary", null, d.is_error ? "error" : "result"));
        more.appendChild(node("pre", null, clip(d.result)));
        li.appendChild(more);
      }
      append($("activity"), li);
    },
    command(d, id) {
      setStep(d.step);
      const block = commandBlock(d.command_id, d);
      const state = node("span", "state", stateText(d));
      state.dataset.eventId = id;
      state.dataset.kind = "command";
      if (d.state === "done") state.classList.add(d.exit_code === 0 && !d.timed_out ? "passed" : "failed");
      append(block.parentElement, state, block.querySelector(".cmd-head"));
      if (d.purpose === "test" && d.state === "done") announce("build-cost");
    },
    output(d, id) {
      const block = commandBlock(d.command_id, null);
      const chunk = node("span", null, d.text);
      chunk.dataset.eventId = id;
      chunk.dataset.kind = "output";
      append(block.parentElement, chunk, block.querySelector("pre"));
    },
    cost(d, id) {
      $("spent").textContent = usd(d.total_usd);
      const li = entry(id, "cost", "cost");
      li.appendChild(node("span", null, d.role + " · " + d.model + " · " + usd(d.call_usd)));
      li.appendChild(node("span", "muted", " (total " + usd(d.total_usd) + ")"));
      append($("activity"), li);
      announce("build-cost");
    },
    pull_request(d, id) {
      const li = entry(id, "pull_request", "pull request");
      li.appendChild(node("strong", null, d.action));
      const label = (d.number ? "#" + d.number + " " : "") + (d.branch || "");
      if (/^https?:\/\//.test(d.url || "")) {
        const link = node("a", null, " " + label);
        link.href = d.url;
        link.rel = "noopener";
        li.appendChild(link);
      } else {
        li.appendChild(node("span", null, " " + label));
      }
      append($("activity"), li);
      announce("build-changed");
    },
    iteration(d, id) {
      const li = entry(id, "iteration", "iteration");
      li.appendChild(node("strong", null, d.number + " " + d.state));
      append($("activity"), li);
      announce("build-changed");
    },
  };

  function stateText(d) {
    if (d.state !== "done") return "running";
    if (d.timed_out) return "→ timed out";
    return "→ exit " + d.exit_code;
  }

  // A command's block, in the test log (test runs) or the commands panel (the rest).
  function commandBlock(commandId, d) {
    let block = commands.get(commandId);
    if (block) return block;
    const panel = d && d.purpose === "test" ? $("test-log") : $("commands");
    block = node("div", "cmd");
    block.dataset.commandId = commandId;
    const head = node("p", "cmd-head");
    const purpose = d ? d.purpose + (d.step ? " · step " + d.step : "") + " $ " : "$ ";
    head.appendChild(node("code", null, purpose + (d ? d.command : commandId)));
    block.appendChild(head);
    block.appendChild(node("pre"));
    commands.set(commandId, block);
    append(panel, block);
    return block;
  }

  function receive(kind, event) {
    const id = Number(event.lastEventId);
    if (!Number.isSafeInteger(id) || id <= lastId) return; // seen already
    lastId = id;
    root.dataset.lastEventId = String(id);
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    render[kind](data, id);
  }

  function finish(event) {
    ended = true;
    source.close();
    let status = null;
    try {
      status = JSON.parse(event.data).status;
    } catch {}
    if (status) setPhase(status);
    setState("ended");
    announce("build-changed");
  }

  function setState(text) {
    $("stream-state").textContent = text;
  }

  function open() {
    const url = new URL(root.dataset.eventsUrl, window.location.href);
    if (lastId) url.searchParams.set("after", String(lastId));
    source = new EventSource(url);
    for (const kind of KINDS) source.addEventListener(kind, (event) => receive(kind, event));
    source.addEventListener("end", finish);
    source.onopen = () => setState("live");
    source.onerror = () => {
      if (ended) return;
      if (source.readyState === EventSource.CLOSED) {
        setState("stopped; retrying");
        setTimeout(() => ended || open(), RETRY_MS);
      } else {
        setState("reconnecting");
      }
    };
  }

  // Closes the stream and opens a new one, after the last event shown.
  function restart() {
    if (source) source.close();
    ended = false;
    open();
  }

  window.buildStream = { restart, lastId: () => lastId };
  open();
})();

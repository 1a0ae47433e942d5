// The live page: reads /live/events (Server-Sent Events, one JSON debate
// event each) and draws the debate. Every piece of data is written with
// textContent or a Text node, never parsed as markup.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  const overlay = document.documentElement.classList.contains("overlay");
  const questionsOn = document.documentElement.dataset.questions === "on";
  // What a turn's finish reason adds under it ("" for nothing: the
  // moderator's skip has its own note).
  const FINISH_NOTES = {
    stop: "",
    speaker_cut: "",
    skipped: "",
    length: "(cut off at the token limit)",
    ended: "(the moderator ended the debate here)",
  };
  // Turns kept visible in the overlay.
  const OVERLAY_TURNS = 3;

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const withToken = (path) => (token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path);

  let personas = new Map(); // id -> {name, occupation, location, colour, row}
  let turns = new Map(); // turn index -> {block, text}
  let rounds = 0;
  let round = 0;

  function setBadge(id, cls, text) {
    const node = $(id);
    node.className = "badge " + cls;
    node.textContent = text;
  }
  const setState = (state, text) => setBadge("state", "state-" + state, text || state);

  function showRound() {
    const node = $("round");
    node.hidden = rounds === 0;
    node.textContent = "Round " + Math.max(round, 1) + " of " + rounds;
  }

  function reset(event) {
    personas = new Map();
    turns = new Map();
    rounds = event.rounds || 0;
    round = 0;
    $("feature").textContent = event.feature || "";
    document.title = "Live: " + (event.feature || "persona-sim");
    $("stream").replaceChildren();
    $("board").replaceChildren();
    $("now").hidden = true;
    (event.personas || []).forEach((p, i) => {
      const colour = "c" + (i % 12);
      const row = el("li");
      row.dataset.personaId = String(p.id);
      const name = el("span", "speaker " + colour, p.name);
      const stance = el("span", "stance stance-unknown", "unknown");
      const interest = el("span", "interest", "–/10");
      row.append(name, stance, interest);
      $("board").append(row);
      personas.set(p.id, { name: p.name, occupation: p.occupation, location: p.location, colour, stance, interest });
    });
    setState("live");
    showRound();
  }

  function markRecent() {
    if (!overlay) return;
    const blocks = Array.from($("stream").children);
    blocks.forEach((b, i) => b.classList.toggle("recent", i >= blocks.length - OVERLAY_TURNS));
  }

  function addBlock(block) {
    $("stream").append(block);
    markRecent();
    if (!overlay) block.scrollIntoView({ block: "end", behavior: "smooth" });
  }

  function turnStarted(e) {
    const who = personas.get(e.persona_id) || { name: e.speaker, occupation: "", location: "", colour: "c0" };
    round = e.round || round;
    showRound();
    const block = el("article", "turn speaking");
    block.dataset.turn = String(e.turn);
    const head = el("header");
    head.append(el("span", "speaker " + who.colour, e.speaker || who.name));
    const meta = [who.occupation, who.location, "round " + e.round].filter(Boolean).join(" · ");
    head.append(el("span", "meta", meta));
    block.append(head);
    if (e.question) block.append(el("div", "note", "Answering: " + e.question));
    const text = el("p", "text");
    const words = document.createTextNode("");
    text.append(words);
    block.append(text);
    turns.set(e.turn, { block, words, personaId: e.persona_id });
    addBlock(block);
    $("now").hidden = false;
    $("now-speaker").className = "speaker " + who.colour;
    $("now-speaker").textContent = e.speaker || who.name;
    $("now-meta").textContent = meta;
  }

  function token_(e) {
    const turn = turns.get(e.turn);
    if (turn) turn.words.appendData(e.text);
  }

  function turnEnded(e) {
    const turn = turns.get(e.turn);
    if (!turn) return;
    turn.block.classList.remove("speaking");
    const why = Object.prototype.hasOwnProperty.call(FINISH_NOTES, e.finish_reason) ? FINISH_NOTES[e.finish_reason] : undefined;
    if (why === undefined && typeof e.finish_reason === "string") {
      turn.block.append(el("div", "note", "(" + e.finish_reason.replace(/_/g, " ") + ")"));
    } else if (why) {
      turn.block.append(el("div", "note", why));
    }
    const who = personas.get(turn.personaId);
    if (!who) return;
    const s = e.stance;
    const position = s && ["for", "mixed", "against"].includes(s.position) ? s.position : "unknown";
    who.stance.className = "stance stance-" + position;
    who.stance.textContent = position;
    who.interest.textContent = s && s.interest ? s.interest + "/10" : "–/10";
  }

  function notice(text, cls) {
    addBlock(el("div", "notice" + (cls ? " " + cls : ""), text));
  }

  function moderated(e) {
    switch (e.action) {
      case "paused": setState("paused"); break;
      case "resumed": setState("live"); break;
      case "skipped": {
        const turn = turns.get(e.turn);
        if (turn) { turn.block.classList.remove("speaking"); turn.block.append(el("div", "note", "(skipped by the moderator)")); }
        break;
      }
      case "floor": notice("The moderator gives the floor to " + e.speaker + "."); break;
      case "asked": {
        const block = el("article", "turn question");
        block.dataset.turn = String(e.turn);
        const head = el("header");
        head.append(el("span", "speaker", "Moderator"));
        if (e.audience) head.append(el("span", "tag", "audience"));
        block.append(head, el("p", "text", e.text));
        addBlock(block);
        break;
      }
      case "round_added": rounds = e.rounds || rounds; showRound(); notice("The moderator added a round."); break;
      case "ended": setState("ended"); notice("The moderator ended the debate."); break;
      default: break;
    }
  }

  function handle(e) {
    switch (e.event) {
      case "debate_started": reset(e); break;
      case "turn_started": turnStarted(e); break;
      case "token": token_(e); break;
      case "turn_ended": turnEnded(e); break;
      case "moderated": moderated(e); break;
      case "done": setState("ended", "ended: " + (e.outcome || "").replace("_", " ")); break;
      case "report_started": notice("Writing the feedback report…"); break;
      case "report_ready": notice("The feedback report is ready (on the host's screen)."); break;
      case "report_failed": notice("The feedback report could not be written.", "error"); break;
      case "error": notice("Error: " + e.message, "error"); break;
      default: break;
    }
  }

  function connect() {
    setBadge("connection", "conn-connecting", "connecting");
    const source = new EventSource(withToken("/live/events"));
    source.onopen = () => setBadge("connection", "conn-live", "connected");
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setBadge("connection", "conn-offline", "offline");
        setTimeout(connect, 3000);
      } else {
        setBadge("connection", "conn-connecting", "reconnecting");
      }
    };
    source.onmessage = (message) => {
      let e;
      try { e = JSON.parse(message.data); } catch (_) { return; }
      if (e) handle(e);
    };
  }

  function setUpAsk() {
    if (!questionsOn || overlay) return;
    const form = $("ask");
    const box = $("question");
    form.hidden = false;
    box.addEventListener("input", () => { $("question-count").textContent = box.value.length + "/280"; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = box.value.trim();
      if (!text) return;
      const item = el("li");
      const status = el("span", "status", "sending…");
      item.append(el("span", "", text), status);
      $("mine").prepend(item);
      try {
        const response = await fetch(withToken("/live/questions"), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text }),
        });
        if (response.status === 202) {
          status.textContent = "sent to the moderator";
          box.value = "";
          $("question-count").textContent = "0/280";
        } else {
          let message = "not sent (" + response.status + ")";
          try { const body = await response.json(); if (body && body.error) message = "not sent: " + body.error.message; } catch (_) { /* plain */ }
          status.textContent = message;
        }
      } catch (_) {
        status.textContent = "not sent: no connection";
      }
    });
  }

  setUpAsk();
  connect();
})();

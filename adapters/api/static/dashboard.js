// The dashboard's client: one graphql-transport-ws subscription to the session's events, folded into the
// panels as they arrive. Amounts stay the decimal strings the API sends (no float arithmetic on money);
// only the equity chart converts them to screen coordinates.
"use strict";
const params = new URLSearchParams(location.search);
const session = params.get("session") || "";
const speed = params.has("speed") ? Number(params.get("speed")) : null;
const hash = new URLSearchParams(location.hash.slice(1));
const key = hash.get("key") || sessionStorage.getItem("cse-key") || "";
if (hash.get("key")) sessionStorage.setItem("cse-key", hash.get("key"));
const $ = (id) => document.getElementById(id);
$("session").textContent = session;

const TYPES = ["signal.spread_opportunity", "order.partially_filled", "order.filled", "portfolio.equity_sampled",
  "risk.*"];
const state = { events: 0, spreads: new Map(), spreadCount: 0, fills: [], fillCount: 0, equity: [],
  rejections: 0, breaches: 0 };

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
  return tr;
}

function apply(ev) {
  const d = ev.data;
  state.events += 1;
  switch (ev.type) {
    case "signal.spread_opportunity":
      state.spreadCount += 1;
      state.spreads.set(`${d.instrument}|${d.buy_venue}|${d.sell_venue}`,
        { d, seen: (state.spreads.get(`${d.instrument}|${d.buy_venue}|${d.sell_venue}`)?.seen || 0) + 1 });
      break;
    case "order.partially_filled": case "order.filled":
      state.fillCount += 1;
      state.fills.unshift(d); state.fills.length = Math.min(state.fills.length, 10);
      break;
    case "portfolio.equity_sampled":
      state.equity.push(d);
      break;
    case "risk.check_rejected": state.rejections += 1; break;
    case "risk.drawdown_breached": state.breaches += 1; break;
    case "risk.kill_switch_engaged": $("kill-switch").textContent = "ENGAGED: " + d.reason;
      $("kill-switch").className = "engaged"; break;
    case "risk.kill_switch_released": $("kill-switch").textContent = "released"; $("kill-switch").className = ""; break;
  }
}

let scheduled = false;
function render() {
  scheduled = false;
  $("event-count").textContent = state.events;
  $("spread-count").textContent = state.spreadCount;
  $("fill-count").textContent = state.fillCount;
  $("rejections").textContent = state.rejections;
  $("breaches").textContent = state.breaches;
  const spreads = $("spreads"); spreads.replaceChildren();
  for (const { d, seen } of [...state.spreads.values()].sort((a, b) => a.d.instrument.localeCompare(b.d.instrument)))
    spreads.appendChild(row([d.instrument, `${d.buy_venue} ${d.buy_price}`, `${d.sell_venue} ${d.sell_price}`,
      d.net_edge_bps, seen]));
  const fills = $("fills"); fills.replaceChildren();
  for (const f of state.fills) fills.appendChild(row([f.venue, f.side, f.quantity, f.price, `${f.fee} ${f.fee_currency}`]));
  const last = state.equity[state.equity.length - 1];
  if (last) {
    $("equity").textContent = last.equity; $("realized").textContent = last.realized_pnl;
    $("unrealized").textContent = last.unrealized_pnl; $("fees").textContent = last.fees;
    const ys = state.equity.map((e) => Number(e.equity));
    const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1, n = Math.max(ys.length - 1, 1);
    $("equity-line").setAttribute("points", ys.map((y, i) => `${(i / n) * 400},${150 - ((y - lo) / span) * 140}`).join(" "));
  }
}
function schedule() { if (!scheduled) { scheduled = true; requestAnimationFrame(render); } }

async function graphql(query, variables) {
  const r = await fetch("/graphql", { method: "POST", headers: { "content-type": "application/json",
    authorization: "Bearer " + key }, body: JSON.stringify({ query, variables }) });
  return r.json();
}

async function refreshPositions() {
  const r = await graphql("query($s:String!){positions(session:$s){account venue asset quantity avgCost realizedPnl}}",
    { s: session });
  const body = $("positions"); body.replaceChildren();
  for (const p of r.data?.positions || []) body.appendChild(row([p.account, p.venue, p.asset, p.quantity, p.avgCost ?? "", p.realizedPnl]));
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    "graphql-transport-ws");
  ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: { apiKey: key } }));
  ws.onmessage = (msg) => {
    const m = JSON.parse(msg.data);
    if (m.type === "connection_ack") {
      $("status").textContent = speed === null ? "live" : `replay x${speed}`;
      ws.send(JSON.stringify({ id: "events", type: "subscribe", payload: {
        query: "subscription($s:String!,$speed:Float,$types:[String!]){events(session:$s,replaySpeed:$speed,types:$types)" +
          "{type data}}", variables: { s: session, speed, types: TYPES } } }));
    } else if (m.type === "next") {
      if (m.payload.errors) { $("status").textContent = "error: " + m.payload.errors[0].message; return; }
      apply(m.payload.data.events); schedule();
    } else if (m.type === "error") {
      $("status").textContent = "error: " + (m.payload[0]?.message || "refused");
    } else if (m.type === "complete") {
      $("status").textContent = "replay complete"; schedule(); refreshPositions();
    } else if (m.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
  };
  ws.onclose = (e) => { if ($("status").textContent !== "replay complete") $("status").textContent = `closed (${e.code} ${e.reason})`; };
}

$("kill").onclick = async () => {
  const r = await graphql("mutation($s:String!){engageKillSwitch(session:$s,reason:\"dashboard\"){commandId}}",
    { s: session });
  $("kill-result").textContent = r.errors ? r.errors[0].message : "command " + r.data.engageKillSwitch.commandId;
};
// The button is offered to admin keys only; the server checks the role again on the mutation.
graphql("{viewerRole}").then((r) => { if (r.data?.viewerRole === "admin") $("admin").hidden = false; });
refreshPositions();
connect();

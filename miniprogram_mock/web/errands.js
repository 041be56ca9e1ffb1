// 红色代办 (red proxy errands): the resident books an errand on a service point's free slot and follows it;
// the community secretary accepts it and assigns a proxy agent; the agent (代办员) carries it step by step
// (materials with the hand-over slip, lodging with the receipt number, the result, handing back).
// Every call goes through api.js with the bearer token, like the order screens.
import { get, idempotencyKey, post } from "./api.js";
import { busy, field, fmtTime, h, slaTag, toast } from "./ui.js";

const LEVELS = [
  [5, "很满意"],
  [4, "满意"],
  [3, "较满意"],
  [2, "基本满意"],
  [1, "不满意"],
];
const WHO = { owner: "居民", secretary: "社区书记", street_admin: "街道", proxy_agent: "代办员", system: "系统" };

const yuan = (fen) => (fen == null ? "" : `${(fen / 100).toFixed(2)} 元`);
const toFen = (value) => (value === "" || value == null ? null : Math.round(Number(value) * 100));

function badge(errand) {
  return h("span", { class: `badge errand-${errand.state}`, "data-state": errand.state }, errand.state_label);
}

function button(label, testid, onClick, cls = "") {
  const b = h("button", { class: `block ${cls}`, "data-testid": testid, type: "button" }, label);
  b.addEventListener("click", () => busy(b, () => onClick(b)));
  return b;
}

function listItem(e, { withSla = true } = {}) {
  const tag = withSla ? slaTag(e) : null;
  return h(
    "a",
    { class: `list-item ${tag ? "sla-" + tag.dataset.sla : ""}`, href: `#/errands/e/${e.id}`, "data-errand-id": e.id },
    h("div", { class: "row between" }, h("span", { class: "title" }, e.type_name), badge(e)),
    h(
      "div",
      { class: "row between muted small" },
      h("span", null, `${e.number} · ${fmtTime(e.created_at)}`, e.agent_assigned ? "" : " · 未指派"),
      tag,
    ),
  );
}

// Lists: one per role.

export async function home(view) {
  const mode = view.session.mode;
  if (mode === "agent") return queue(view);
  if (mode === "secretary") return board(view);
  return mine(view);
}

async function mine(view) {
  view.title("红色代办");
  const page = await get("/errands", { limit: 50 });
  return h(
    "div",
    { "data-testid": "my-errands" },
    h(
      "div",
      { class: "card muted small" },
      "低保申请、代购药品、残疾证办理等事项，预约后由社区代办员全程代办，每一步都可在这里查看。",
    ),
    button("＋ 预约代办", "new-errand", () => view.go("#/errands/new")),
    h("div", { class: "section-title" }, "我的代办"),
    page.items.length ? page.items.map((e) => listItem(e, { withSla: false })) : h("div", { class: "empty" }, "还没有代办事项"),
  );
}

async function queue(view) {
  view.title("我的代办队列");
  const page = await get("/errands/queue", { limit: 50 });
  return h(
    "div",
    { "data-testid": "agent-queue" },
    h("div", { class: "muted small", style: "margin:0 4px 8px" }, "按时限排序，最急的在前；待补材料的暂停计时，排在后面。"),
    page.items.length ? page.items.map((e) => listItem(e)) : h("div", { class: "empty" }, "队列里没有代办"),
  );
}

async function board(view) {
  view.title("红色代办");
  const [waiting, open] = await Promise.all([
    get("/errands/board", { state: "appointed", limit: 50 }),
    get("/errands/board", { limit: 50 }),
  ]);
  const rest = open.items.filter((e) => e.state !== "appointed");
  return h(
    "div",
    { "data-testid": "errand-board" },
    h("div", { class: "section-title" }, `待受理（${waiting.items.length}）`),
    h(
      "div",
      { "data-testid": "errands-to-accept" },
      waiting.items.length ? waiting.items.map((e) => listItem(e)) : h("div", { class: "empty" }, "没有待受理的代办"),
    ),
    h("div", { class: "section-title" }, `在办（${rest.length}）`),
    h("div", { "data-testid": "errands-open" }, rest.length ? rest.map((e) => listItem(e)) : h("div", { class: "empty" }, "没有在办的代办")),
  );
}

// Booking: an errand type, a service point and one of its free slots; the appointment, then the errand.

/** The resident's community (from the grid of their role), so only the points serving it are offered. */
async function myCommunity() {
  try {
    const [me, communities] = await Promise.all([get("/me"), get("/communities")]);
    const grids = new Set(me.roles.filter((r) => r.role === "resident").map((r) => r.scope_id));
    const mine = communities.items.find((c) => c.grids.some((g) => grids.has(g.id)));
    return mine ? mine.id : undefined;
  } catch {
    return undefined;
  }
}

export async function newErrand(view) {
  view.title("预约代办");
  view.back("#/errands");
  const { items: types } = await get("/errand-types");
  const type = h(
    "select",
    { "data-testid": "errand-type" },
    h("option", { value: "" }, "请选择事项"),
    types.map((t) => h("option", { value: t.code }, t.name)),
  );
  const about = h("div", { class: "muted small", "data-testid": "errand-type-about" });
  const point = h("select", { "data-testid": "service-point", disabled: true }, h("option", { value: "" }, "先选择事项"));
  const slot = h("select", { "data-testid": "slot", disabled: true }, h("option", { value: "" }, "先选择服务点"));
  const description = h("textarea", { "data-testid": "errand-description", placeholder: "简单说明情况（可选）" });
  let points = [];

  type.addEventListener("change", async () => {
    const chosen = types.find((t) => t.code === type.value);
    about.replaceChildren();
    point.replaceChildren(h("option", { value: "" }, "加载中…"));
    slot.replaceChildren(h("option", { value: "" }, "先选择服务点"));
    slot.disabled = true;
    if (!chosen) return;
    const d = chosen.definition;
    about.append(
      h("div", null, d.description || ""),
      h("div", null, "需要准备：", d.materials.map((m) => m.name + (m.required ? "" : `（${m.condition || "视情况"}）`)).join("、")),
      h("div", null, `办理部门：${d.office}`),
    );
    points = (await get("/service-points", { errand_type: chosen.code, community_id: await myCommunity(), limit: 50 })).items;
    point.replaceChildren(
      h("option", { value: "" }, points.length ? "请选择服务点" : "暂无可预约的服务点"),
      ...points.map((p) => h("option", { value: p.id }, `${p.name}${p.community ? "" : "（街道）"}`)),
    );
    point.disabled = !points.length;
  });

  point.addEventListener("change", async () => {
    slot.replaceChildren(h("option", { value: "" }, "加载中…"));
    if (!point.value) return;
    const { items } = await get(`/service-points/${point.value}/availability`);
    const free = items.filter((o) => o.available);
    slot.replaceChildren(
      h("option", { value: "" }, free.length ? "请选择时段" : "近期已约满"),
      ...free.map((o) =>
        h(
          "option",
          { value: `${o.slot_id}|${o.date}` },
          `${o.date.slice(5)} ${o.weekday_label} ${o.starts_at.slice(11, 16)}–${o.ends_at.slice(11, 16)}（余 ${o.remaining}）`,
        ),
      ),
    );
    slot.disabled = !free.length;
  });

  const bookingKey = idempotencyKey(); // one per form: a retried submit never books twice
  const errandKey = idempotencyKey();
  const submit = button("提交预约", "submit-errand", async () => {
    if (!type.value) return toast("请选择事项", { error: true });
    if (!slot.value) return toast("请选择服务点和时段", { error: true });
    const [slotId, date] = slot.value.split("|");
    const booking = await post(
      "/appointments",
      { slot_id: slotId, date, errand_type: type.value, note: description.value.trim() },
      { "Idempotency-Key": bookingKey },
    );
    const errand = await post(
      "/errands",
      { type: type.value, appointment_id: booking.id, description: description.value.trim() },
      { "Idempotency-Key": errandKey },
    );
    toast("已预约，社区会尽快受理");
    view.go(`#/errands/e/${errand.id}`);
  });
  return h(
    "div",
    { class: "card", "data-testid": "errand-form" },
    ...field("代办事项", type, { required: true }),
    about,
    ...field("服务点", point, { required: true }),
    ...field("预约时段", slot, { required: true }),
    ...field("情况说明", description),
    submit,
  );
}

// One errand: what it is, the checklist, the steps, the result, the timeline, and the viewer's actions.

function materialsCard(errand) {
  return h(
    "div",
    { class: "card", "data-testid": "materials" },
    h("h3", null, "材料清单"),
    h(
      "ul",
      { class: "checklist" },
      errand.materials.map((m) =>
        h(
          "li",
          { "data-material": m.code, class: m.received ? "done" : m.missing ? "missing" : "" },
          m.received ? "✓ " : m.missing ? "✗ " : "○ ",
          m.name,
          m.required ? "" : h("span", { class: "muted small" }, `（${m.condition || "视情况"}）`),
          m.missing ? h("span", { class: "badge flag" }, "待补") : null,
        ),
      ),
    ),
  );
}

function stepsCard(errand) {
  const order = ["appointed", "accepted", "materials_collected", "lodged", "under_review", "result", "returned_to_resident"];
  const at = order.indexOf(errand.state === "materials_pending" ? "accepted" : errand.state);
  const finished = errand.state === "completed";
  return h(
    "div",
    { class: "card", "data-testid": "steps" },
    h("h3", null, "办理步骤"),
    h(
      "ol",
      { class: "steps" },
      errand.steps.map((s) => {
        const i = order.indexOf(s.state);
        const cls = finished || (at >= 0 && i < at) ? "done" : i === at ? "current" : "";
        const unit = { working_days: "个工作日", working_hours: "个工作小时", hours: "小时" }[s.limit.unit] || s.limit.unit;
        return h("li", { class: cls, "data-step": s.state }, h("span", null, s.name), h("span", { class: "muted small" }, ` ${s.limit.amount}${unit}内`));
      }),
    ),
  );
}

function resultCard(errand) {
  if (!errand.outcome && !errand.receipt_number && !errand.handover) return null;
  return h(
    "div",
    { class: "card", "data-testid": "errand-result" },
    h("h3", null, "办理情况"),
    h(
      "dl",
      { class: "kv" },
      errand.handover ? [h("dt", null, "交接单"), h("dd", null, `${errand.handover.number}（${errand.handover.handed_over_by} → ${errand.handover.received_by}）`)] : null,
      errand.cash_received_fen != null ? [h("dt", null, "收到现金"), h("dd", null, yuan(errand.cash_received_fen))] : null,
      errand.office ? [h("dt", null, "办理部门"), h("dd", null, errand.office)] : null,
      errand.receipt_number ? [h("dt", null, "回执号"), h("dd", { "data-testid": "receipt-number" }, errand.receipt_number)] : null,
      errand.outcome ? [h("dt", null, "结果"), h("dd", { "data-testid": "outcome" }, `${errand.outcome_label}：${errand.result_note}`)] : null,
      errand.amount_fen != null ? [h("dt", null, "金额"), h("dd", null, `${yuan(errand.amount_fen)}/月`)] : null,
      errand.certificate_number ? [h("dt", null, "证书编号"), h("dd", null, errand.certificate_number)] : null,
      errand.valid_until ? [h("dt", null, "有效期至"), h("dd", null, errand.valid_until)] : null,
      errand.amount_spent_fen != null ? [h("dt", null, "实付/找零"), h("dd", null, `${yuan(errand.amount_spent_fen)} / ${yuan(errand.change_returned_fen)}`)] : null,
      errand.rating ? [h("dt", null, "评价"), h("dd", { "data-testid": "errand-rating" }, errand.rating_label, errand.rating_comment ? ` ${errand.rating_comment}` : "")] : null,
      errand.close_reason ? [h("dt", null, "原因"), h("dd", null, errand.close_reason)] : null,
    ),
  );
}

// A purchase's drug list is health information: every answer masks the drug names (quantities and the
// prescription flags stay whole). The assigned agent reads the whole list through the logged reveal, with a
// reason, while the errand is in their steps (errands.states.AGENT_STATES on the server).
const AGENT_STATES = ["accepted", "materials_pending", "materials_collected", "lodged", "under_review", "result"];

function drugLine(item) {
  const rx = item.prescription_required ? (item.prescription_present ? "处方药，有处方" : "处方药，缺处方") : "";
  return h("li", null, `${item.drug_name} × ${item.quantity}`, rx ? h("span", { class: "muted small" }, `（${rx}）`) : null);
}

function drugListCard(errand, mode) {
  if (!errand.items || !errand.items.length) return null;
  const list = h("ul", { "data-testid": "drug-list" }, errand.items.map(drugLine));
  let reveal = null;
  if (mode === "agent" && AGENT_STATES.includes(errand.state)) {
    const reason = h("input", { type: "text", "data-testid": "reveal-reason", value: "到药房购药，核对药名" });
    reveal = [
      ...field("查看原因（记入日志）", reason, { required: true }),
      button("查看完整清单", "do-reveal-items", async () => {
        const { value } = await post(`/errands/${errand.id}/reveal`, { field: "items", reason: reason.value.trim() });
        list.replaceChildren(...(value || []).map(drugLine));
        list.dataset.revealed = "true";
      }, "secondary"),
    ];
  }
  return h(
    "div",
    { class: "card", "data-testid": "drug-list-card" },
    h("h3", null, "药品清单"),
    h("div", { class: "muted small" }, "药名属健康信息，已脱敏"),
    list,
    reveal,
  );
}

function errandTimeline(errand, forResident) {
  return h(
    "ol",
    { class: "timeline", "data-testid": "timeline" },
    errand.timeline.map((e) =>
      h(
        "li",
        { "data-action": e.action },
        h("div", null, forResident ? e.text : `${e.action_label}${e.to_state_label && e.from_state !== e.to_state ? ` → ${e.to_state_label}` : ""}`),
        e.note && !(forResident && e.text.includes(e.note)) ? h("div", { class: "muted" }, e.note) : null,
        h("div", { class: "when" }, `${fmtTime(e.at)} · ${e.by_system ? "系统" : WHO[e.actor_role] || e.actor_role}`),
      ),
    ),
  );
}

function checks(errand, name, { preset = (m) => m.received, only = () => true } = {}) {
  return h(
    "div",
    { class: "choices column", "data-testid": `${name}-materials` },
    errand.materials.filter(only).map((m) =>
      h("label", null, h("input", { type: "checkbox", value: m.code, name, checked: preset(m) }), " ", m.name, m.required ? "" : "（可选）"),
    ),
  );
}
const checked = (box) => Array.from(box.querySelectorAll("input:checked")).map((i) => i.value);

// A purchase that fails or is cancelled while the agent holds the resident's cash records all of it handed back.
function cashBack(errand, testid) {
  if (errand.cash_received_fen == null || errand.change_returned_fen != null) return null;
  return h("input", { type: "number", step: "0.01", "data-testid": testid, placeholder: `已收 ${yuan(errand.cash_received_fen)}，全部退还` });
}

function form(title, testid, ...children) {
  return h("div", { class: "card", "data-testid": testid }, h("h3", null, title), ...children);
}

async function agentChoices(errand) {
  const agents = await get(`/communities/${errand.community_id}/agents`).catch(() => ({ items: [] }));
  return agents.items.map((a) => [a.id, a.name]);
}

async function secretaryForms(view, errand, can) {
  const parts = [];
  if (can.has("accept")) {
    const agents = await agentChoices(errand);
    const agent = h(
      "select",
      { "data-testid": "accept-agent" },
      agents.map(([id, name]) => h("option", { value: id }, name)),
      h("option", { value: "" }, "其他（填写代办员编号）"),
    );
    const agentId = h("input", { type: "text", "data-testid": "accept-agent-id", placeholder: "代办员编号", hidden: agents.length > 0 });
    agent.addEventListener("change", () => (agentId.hidden = agent.value !== ""));
    const note = h("input", { type: "text", "data-testid": "eligibility-note", value: "户籍在本社区，资格初审通过" });
    const seen = checks(errand, "seen", { preset: () => false });
    parts.push(
      form(
        "受理并指派代办员",
        "accept-form",
        ...field("资格初审", note, { required: true }),
        ...field("已查验的材料", seen),
        ...field("代办员", h("div", null, agent, agentId), { required: true }),
        button("受理", "do-accept", async () => {
          await post(`/errands/${errand.id}/accept`, {
            agent_id: agent.value || agentId.value.trim(),
            eligibility_note: note.value.trim(),
            materials: checked(seen),
          });
          toast("已受理并指派");
          view.refresh();
        }),
      ),
    );
  }
  return parts;
}

function agentForms(view, errand, can, kind) {
  const parts = [];
  const act = (action, body, message) => async () => {
    await post(`/errands/${errand.id}/${action.replaceAll("_", "-")}`, body()); // record_result → record-result
    toast(message);
    view.refresh();
  };
  const definition = kind.definition;
  if (can.has("collect")) {
    const materials = checks(errand, "collect", { preset: (m) => m.received || m.required });
    const number = h("input", { type: "text", "data-testid": "handover-number", placeholder: "交接单编号" });
    const from = h("input", { type: "text", "data-testid": "handover-from", value: errand.applicant_name });
    const to = h("input", { type: "text", "data-testid": "handover-to", value: (errand.agent && errand.agent.name) || "" });
    const signed = h("input", { type: "checkbox", "data-testid": "handover-signed" });
    const cash = definition.money ? h("input", { type: "number", step: "0.01", "data-testid": "cash-received", placeholder: "元" }) : null;
    parts.push(
      form(
        "收件：勾选收到的材料，填写交接单",
        "collect-form",
        materials,
        ...field("交接单编号", number, { required: true }),
        ...field("交件人", from, { required: true }),
        ...field("收件人", to, { required: true }),
        h("label", { class: "field" }, signed, " 双方已在交接单上签字"),
        cash ? field("收到的购药现金", cash, { required: true }) : null,
        button("确认收件", "do-collect", act("collect", () => ({
          materials: checked(materials),
          handover: { number: number.value.trim(), handed_over_by: from.value.trim(), received_by: to.value.trim(), signed: signed.checked },
          ...(cash ? { cash_received_fen: toFen(cash.value) } : {}),
        }), "已收件")),
      ),
    );
  }
  if (can.has("request_materials")) {
    const missing = checks(errand, "missing", { preset: () => false, only: (m) => !m.received });
    const note = h("input", { type: "text", "data-testid": "missing-note", placeholder: "补充说明（可选）" });
    parts.push(
      form(
        "材料不齐？通知居民补材料（暂停计时）",
        "request-materials-form",
        missing,
        note,
        button("通知补材料", "do-request_materials", act("request_materials", () => ({ missing: checked(missing), note: note.value.trim() }), "已通知居民"), "secondary"),
      ),
    );
  }
  if (can.has("lodge")) {
    const office = h("input", { type: "text", "data-testid": "lodge-office", value: definition.office });
    const receipt = h("input", { type: "text", "data-testid": "lodge-receipt", placeholder: "部门出具的回执号" });
    parts.push(
      form(
        "递交办理部门",
        "lodge-form",
        ...field("办理部门", office, { required: true }),
        ...field("回执号", receipt, { required: true }),
        button("已递交", "do-lodge", act("lodge", () => ({ office: office.value.trim(), receipt_number: receipt.value.trim() }), "已递交")),
      ),
    );
  }
  if (can.has("review")) {
    const note = h("input", { type: "text", "data-testid": "review-note", placeholder: "如：已入户调查，公示中" });
    parts.push(form("部门开始审核", "review-form", note, button("部门审核中", "do-review", act("review", () => ({ note: note.value.trim() }), "已更新"), "secondary")));
  }
  if (can.has("record_result")) {
    const fields = new Set(definition.result.fields || []);
    const outcome = h(
      "div",
      { class: "stars", "data-testid": "outcome-choice" },
      [["approved", "批准/办成"], ["refused", "不予批准/未办成"]].map(([v, label]) =>
        h("label", null, h("input", { type: "radio", name: "outcome", value: v, checked: v === "approved" }), h("span", null, label)),
      ),
    );
    const note = h("input", { type: "text", "data-testid": "result-note", placeholder: "结果说明" });
    const amount = fields.has("amount_fen") ? h("input", { type: "number", step: "0.01", "data-testid": "result-amount", placeholder: "元/月" }) : null;
    const certificate = fields.has("certificate_number") ? h("input", { type: "text", "data-testid": "result-certificate" }) : null;
    const validUntil = fields.has("valid_until") ? h("input", { type: "text", "data-testid": "result-valid-until", placeholder: "YYYY-MM-DD" }) : null;
    const spent = definition.money ? h("input", { type: "number", step: "0.01", "data-testid": "result-spent", placeholder: "元" }) : null;
    const change = definition.money ? h("input", { type: "number", step: "0.01", "data-testid": "result-change", placeholder: "元" }) : null;
    parts.push(
      form(
        "登记结果",
        "result-form",
        outcome,
        ...field("结果说明", note, { required: true }),
        amount ? field("每月保障金额（批准时）", amount) : null,
        certificate ? field("证书编号（发证时）", certificate) : null,
        validUntil ? field("有效期至", validUntil) : null,
        spent ? [field("实付", spent), field("找零", change)] : null,
        button("登记结果", "do-record_result", act("record_result", () => {
          const body = { outcome: outcome.querySelector("input:checked").value, note: note.value.trim() };
          if (amount && amount.value) body.amount_fen = toFen(amount.value);
          if (certificate && certificate.value) body.certificate_number = certificate.value.trim();
          if (validUntil && validUntil.value) body.valid_until = validUntil.value.trim();
          if (spent && spent.value) body.amount_spent_fen = toFen(spent.value);
          if (change && change.value) body.change_returned_fen = toFen(change.value);
          return body;
        }, "结果已登记")),
      ),
    );
  }
  if (can.has("return_to_resident")) {
    const note = h("input", { type: "text", "data-testid": "return-note", placeholder: "如：结果通知书和原件已当面交还" });
    parts.push(form("送还居民", "return-form", note, button("已送还", "do-return_to_resident", act("return_to_resident", () => ({ note: note.value.trim() }), "已送还"))));
  }
  if (can.has("fail")) {
    const reason = h("input", { type: "text", "data-testid": "fail-reason", placeholder: "未能办成的原因" });
    const back = cashBack(errand, "fail-change");
    const body = () => ({ reason: reason.value.trim(), ...(back ? { change_returned_fen: toFen(back.value) } : {}) });
    parts.push(form("无法办理", "fail-form", reason, back ? field("退还现金", back, { required: true }) : null, button("办理失败", "do-fail", act("fail", body, "已记录"), "danger")));
  }
  return parts;
}

function residentForms(view, errand, can) {
  const parts = [];
  if (can.has("complete")) {
    parts.push(
      form(
        "已收到结果和原件？",
        "complete-form",
        button("确认办结", "do-complete", async () => {
          await post(`/errands/${errand.id}/complete`, {});
          toast("已办结");
          view.refresh();
        }),
      ),
    );
  }
  if (can.has("rate") && !errand.rating) {
    const levels = h(
      "div",
      { class: "stars", "data-testid": "errand-rating-levels" },
      LEVELS.map(([value, label]) => h("label", null, h("input", { type: "radio", name: "level", value, checked: value === 5 }), h("span", null, label))),
    );
    const comment = h("textarea", { "data-testid": "errand-rating-comment", placeholder: "说说这次代办（可选）" });
    parts.push(
      form(
        "评价这次代办",
        "errand-rate-form",
        levels,
        comment,
        button("提交评价", "do-rate", async () => {
          await post(`/errands/${errand.id}/rate`, { level: Number(levels.querySelector("input:checked").value), comment: comment.value.trim() });
          toast("感谢您的评价");
          view.refresh();
        }),
      ),
    );
  }
  return parts;
}

function cancelForm(view, errand) {
  const reason = h("input", { type: "text", "data-testid": "errand-cancel-reason", placeholder: "取消原因" });
  const back = cashBack(errand, "errand-cancel-change");
  return form(
    "取消代办",
    "errand-cancel-form",
    reason,
    back ? field("退还现金", back, { required: true }) : null,
    button("取消代办", "do-errand-cancel", async () => {
      await post(`/errands/${errand.id}/cancel`, { reason: reason.value.trim(), ...(back ? { change_returned_fen: toFen(back.value) } : {}) });
      view.refresh();
    }, "danger"),
  );
}

export async function errandDetail(view, id) {
  view.title("代办详情");
  view.back("#/errands");
  const errand = await get(`/errands/${id}`);
  const mode = view.session.mode;
  const can = new Set(errand.allowed_actions);
  const forResident = mode === "resident";
  let actions = [];
  if (mode === "secretary") actions = await secretaryForms(view, errand, can);
  else if (mode === "agent") actions = agentForms(view, errand, can, await get(`/errand-types/${errand.type}`));
  else actions = residentForms(view, errand, can);
  if (can.has("cancel") && mode !== "agent") actions.push(cancelForm(view, errand));
  return h(
    "div",
    { "data-testid": "errand-detail", "data-state": errand.state },
    h(
      "div",
      { class: "card", "data-testid": "errand-card" },
      h("div", { class: "row between" }, h("h2", null, errand.type_name), badge(errand)),
      h("div", { class: "muted small" }, `${errand.number} · ${errand.community_name}`),
      errand.description ? h("p", null, errand.description) : null,
      h(
        "dl",
        { class: "kv" },
        h("dt", null, "申请人"),
        h("dd", null, errand.applicant_name),
        h("dt", null, "代办员"),
        h("dd", { "data-testid": "errand-agent" }, errand.agent ? errand.agent.name : "待社区指派"),
        h("dt", null, "时限"),
        h("dd", null, errand.due_at ? `${fmtTime(errand.due_at)} `: "—", errand.due_at ? slaTag(errand) : null),
      ),
    ),
    drugListCard(errand, mode),
    actions,
    resultCard(errand),
    h("div", { class: "card" }, h("h3", null, "进度"), errandTimeline(errand, forResident)),
    materialsCard(errand),
    stepsCard(errand),
  );
}

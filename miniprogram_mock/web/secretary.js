// The community secretary (社区书记): the dispatch board with SLA colours and filters, accept / reject,
// recommendations with their reasons, dispatch, and the 督办 (supervision) list.
import { get, post } from "./api.js";
import { orderCard, resultCard } from "./resident.js";
import { busy, fmtTime, h, slaTag, stateBadge, timeline, toast } from "./ui.js";

const STATE_LABELS = {
  submitted: "已点单",
  accepted: "已受理",
  dispatched: "待签收",
  returned: "已退单",
  taken: "已签收",
  in_progress: "办理中",
  suspended: "待补充",
  resolved: "已回单",
};
const KINDS = { urgent: "紧急性", daily: "日常性", targeted: "针对性", professional: "专业性" };

// Kept while the page lives, so coming back to the board keeps the filters.
const filters = { state: "", service_kind: "", overdue: false, supervised: false, all: false, number: "" };

function select(name, options, value, testid) {
  const el = h("select", { name, "data-testid": testid }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
  return el;
}

export async function board(view) {
  view.title("派单台");
  const query = { limit: 50 };
  // A number a resident reads out on the phone finds their order in any state.
  if (filters.number) query.number = filters.number;
  else if (filters.state) query.state = filters.state;
  else query.needs_action = !filters.all;
  if (filters.service_kind) query.service_kind = filters.service_kind;
  if (filters.overdue) query.overdue = true;
  if (filters.supervised) query.supervised = true;
  const page = await get("/orders/board", query);

  const stateSelect = select(
    "state",
    [["", "需要我处理的"], ["*", "全部在办"], ...Object.entries(STATE_LABELS)],
    filters.state || (filters.all ? "*" : ""),
    "filter-state",
  );
  const kindSelect = select("service_kind", [["", "全部类型"], ...Object.entries(KINDS)], filters.service_kind, "filter-kind");
  const overdue = h("input", { type: "checkbox", checked: filters.overdue, "data-testid": "filter-overdue" });
  const supervised = h("input", { type: "checkbox", checked: filters.supervised, "data-testid": "filter-supervised" });
  const number = h("input", { type: "search", inputmode: "numeric", placeholder: "按工单号查找", value: filters.number, "data-testid": "filter-number" });
  const apply = () => {
    filters.all = stateSelect.value === "*";
    filters.state = filters.all ? "" : stateSelect.value;
    filters.service_kind = kindSelect.value;
    filters.overdue = overdue.checked;
    filters.supervised = supervised.checked;
    filters.number = number.value.trim();
    view.refresh();
  };
  for (const el of [stateSelect, kindSelect, overdue, supervised, number]) el.addEventListener("change", apply);

  return h(
    "div",
    { "data-testid": "board" },
    h(
      "div",
      { class: "counts", "data-testid": "counts" },
      Object.entries(STATE_LABELS).map(([state, label]) => h("div", { class: "chip", "data-count": state }, h("b", null, page.counts[state] ?? 0), label)),
    ),
    h(
      "div",
      { class: "filters" },
      stateSelect,
      kindSelect,
      h("label", null, overdue, "只看超时"),
      h("label", null, supervised, "只看督办"),
      number,
    ),
    h(
      "div",
      { class: "muted small", style: "margin:0 4px 6px" },
      h("span", { class: "sla green" }, "绿 时限内"),
      " ",
      h("span", { class: "sla yellow" }, "黄 即将到期"),
      " ",
      h("span", { class: "sla red" }, "红 已超时"),
    ),
    page.items.length
      ? page.items.map((o) =>
          h(
            "a",
            { class: `list-item sla-${slaTag(o).dataset.sla}`, href: `#/secretary/orders/${o.id}`, "data-order-id": o.id },
            h("div", { class: "row between" }, h("span", { class: "title" }, o.category_name), h("span", { class: "row" }, o.is_supervised ? h("span", { class: "badge flag" }, "督办") : null, stateBadge(o))),
            h("div", { class: "desc" }, o.description),
            h(
              "div",
              { class: "row between muted small" },
              h("span", null, `${o.service_kind_label} · ${fmtTime(o.created_at)}`, o.possible_duplicate ? " · 疑似重复" : "", o.extension_requested ? " · 申请延期" : ""),
              slaTag(o),
            ),
          ),
        )
      : h("div", { class: "empty" }, "没有符合条件的工单"),
  );
}

function button(label, testid, onClick, cls = "") {
  const b = h("button", { class: `small ${cls}`, "data-testid": testid, type: "button" }, label);
  b.addEventListener("click", () => busy(b, () => onClick(b)));
  return b;
}

async function recommendations(view, order, action) {
  const { items } = await get(`/orders/${order.id}/recommendations`);
  const dispatch = async (ids, pool) => {
    await post(`/orders/${order.id}/${action}`, { organization_ids: ids, pool });
    toast(pool ? "已放入抢单池" : "已派单");
    view.refresh();
  };
  return h(
    "div",
    { class: "card", "data-testid": "recommendations" },
    h("h3", null, action === "redispatch" ? "改派：推荐的服务组织" : "派单：推荐的服务组织"),
    items.length
      ? items.map((c, i) =>
          h(
            "div",
            { class: "candidate", "data-organization-id": c.organization_id, "data-rank": i + 1 },
            h("div", { class: "row between" }, h("b", { class: "candidate-name" }, c.name), h("span", { class: "score" }, `${Math.round(c.score)} 分`)),
            h("div", { class: "muted small" }, `在办 ${c.open_load}/${c.capacity}`, c.rating != null ? ` · 评分 ${c.rating.toFixed(1)}` : "", c.on_time_rate != null ? ` · 按时率 ${Math.round(c.on_time_rate * 100)}%` : ""),
            h("ul", { class: "reasons" }, c.reasons.map((r) => h("li", null, r))),
            button("派给该组织", "do-dispatch", () => dispatch([c.organization_id], false)),
          ),
        )
      : h("div", { class: "empty" }, "没有能承接该服务的组织"),
    items.length > 1 ? h("div", { style: "margin-top:8px" }, button(`放入抢单池（前 ${Math.min(3, items.length)} 个组织）`, "do-pool", () => dispatch(items.slice(0, 3).map((c) => c.organization_id), true), "secondary")) : null,
  );
}

export async function orderDetail(view, id) {
  view.title("工单处理");
  view.back("#/secretary");
  const order = await get(`/orders/${id}`);
  const can = new Set(order.allowed_actions);
  const parts = [];
  if (can.has("accept")) {
    const kind = select("service_kind", Object.entries(KINDS), order.service_kind, "accept-kind");
    parts.push(
      h(
        "div",
        { class: "row", style: "margin-top:8px" },
        h("span", { class: "muted small" }, "服务类型"),
        h("div", { class: "grow" }, kind),
        button("受理", "do-accept", async () => {
          await post(`/orders/${order.id}/accept`, { service_kind: kind.value });
          toast("已受理");
          view.refresh();
        }),
      ),
    );
  }
  const reasonRow = (action, label, placeholder) => {
    const reason = h("input", { type: "text", placeholder, "data-testid": `${action}-reason` });
    return h(
      "div",
      { class: "row", style: "margin-top:8px" },
      h("div", { class: "grow" }, reason),
      button(label, `do-${action}`, async () => {
        await post(`/orders/${order.id}/${action}`, { reason: reason.value.trim() });
        view.refresh();
      }, "danger"),
    );
  };
  if (can.has("reject")) parts.push(reasonRow("reject", "驳回", "驳回理由"));
  // A request the deadline has overtaken can only be refused: deny is offered without approve.
  if (can.has("approve_extension") || can.has("deny_extension")) {
    const ext = order.extension_request || {};
    parts.push(
      h(
        "div",
        { style: "margin-top:8px" },
        h("div", { class: "muted small" }, `组织申请延期 ${ext.label || ""}：${ext.reason || ""}`),
        h(
          "div",
          { class: "row" },
          can.has("approve_extension") && button("批准延期", "do-approve_extension", async () => (await post(`/orders/${order.id}/approve-extension`, {}), view.refresh())),
          can.has("deny_extension") && button("不批准", "do-deny_extension", async () => (await post(`/orders/${order.id}/deny-extension`, {}), view.refresh()), "secondary"),
        ),
      ),
    );
  }
  if (can.has("cancel")) parts.push(reasonRow("cancel", "取消工单", "取消原因（已征得居民同意）"));
  const dispatchAction = can.has("redispatch") ? "redispatch" : can.has("dispatch") ? "dispatch" : null;
  return h(
    "div",
    { "data-testid": "order-detail", "data-state": order.state },
    orderCard(order),
    h(
      "div",
      { class: "card" },
      h("div", { class: "row between" }, h("span", { class: "muted small" }, order.due_at ? `时限 ${fmtTime(order.due_at)}` : "受理后开始计时"), slaTag(order)),
      order.offered_to.length && order.state === "dispatched" ? h("div", { class: "muted small" }, `已派给：${order.offered_to.map((o) => o.name).join("、")}${order.pool ? "（抢单）" : ""}`) : null,
      parts,
    ),
    dispatchAction ? await recommendations(view, order, dispatchAction) : null,
    resultCard(order),
    h("div", { class: "card" }, h("h3", null, "进度"), timeline(order)),
  );
}

export async function supervisions(view) {
  view.title("督办");
  const page = await get("/supervisions", { limit: 50 });
  return h(
    "div",
    { "data-testid": "supervisions" },
    h("div", { class: "muted small", style: "margin:0 4px 8px" }, "超时、差评、多次退单或二次重办会自动列入督办，由街道跟进。"),
    page.items.length
      ? page.items.map((s) =>
          h(
            "div",
            { class: "card", "data-supervision-id": s.id },
            h("div", { class: "row between" }, h("b", null, s.title), h("span", { class: s.status === "open" ? "badge flag" : "badge" }, s.status_label)),
            h("div", { class: "muted small" }, `${s.reason_label} · ${fmtTime(s.raised_at)}${s.raised_by_system ? " · 系统发起" : ""}`),
            s.note ? h("div", null, s.note) : null,
            s.resolution ? h("div", { class: "muted" }, `督办结果：${s.resolution}`) : null,
          ),
        )
      : h("div", { class: "empty" }, "暂无督办"),
  );
}

// The social organization (社会组织): its admin takes (接单), returns, assigns volunteers and reports back;
// a volunteer starts and resolves the orders assigned to them, with proof photos.
import { get, post, upload } from "./api.js";
import { orderCard, resultCard } from "./resident.js";
import { busy, fmtTime, h, photoPicker, slaTag, stateBadge, timeline, toast } from "./ui.js";

function scopes(session, role) {
  return session.user.roles.filter((r) => r.role === role && r.scope_type === "organization").map((r) => r.scope_id);
}

function item(o) {
  return h(
    "a",
    { class: `list-item sla-${slaTag(o).dataset.sla}`, href: `#/org/orders/${o.id}`, "data-order-id": o.id },
    h("div", { class: "row between" }, h("span", { class: "title" }, `${o.category_name}`), stateBadge(o)),
    h("div", { class: "desc" }, o.description),
    h("div", { class: "row between muted small" }, h("span", null, `${o.number} · ${o.service_kind_label}`), slaTag(o)),
  );
}

function section(title, orders, testid, empty) {
  return h(
    "div",
    { "data-testid": testid },
    h("div", { class: "section-title" }, `${title}（${orders.length}）`),
    orders.length ? orders.map(item) : h("div", { class: "empty" }, empty),
  );
}

export async function board(view) {
  const admin = scopes(view.session, "org_admin");
  if (admin.length) {
    view.title("本组织工单");
    const pages = await Promise.all(admin.map((id) => get(`/organizations/${id}/orders`, { limit: 100 })));
    const orgs = await Promise.all(admin.map((id) => get(`/organizations/${id}`)));
    const all = pages.flatMap((p) => p.items);
    return h(
      "div",
      { "data-testid": "org-board" },
      h("div", { class: "card" }, h("h2", null, orgs.map((o) => o.name).join("、")), h("div", { class: "muted small" }, "社区派来的工单：先接单（签收），再指派志愿者、办理、回单。")),
      section("待接单", all.filter((o) => o.state === "dispatched"), "to-take", "暂无待接的工单"),
      section("在办", all.filter((o) => o.state !== "dispatched"), "in-hand", "暂无在办的工单"),
    );
  }
  view.title("我的任务");
  const page = await get("/me/assignments", { limit: 100 });
  const open = page.items.filter((o) => !["resolved", "closed", "cancelled"].includes(o.state));
  return h(
    "div",
    { "data-testid": "assignments" },
    section("待办理", open, "to-do", "暂无指派给您的任务"),
    section("已完成", page.items.filter((o) => !open.includes(o)), "done", "暂无"),
  );
}

function button(label, testid, onClick, cls = "") {
  const b = h("button", { class: `small ${cls}`, "data-testid": testid, type: "button" }, label);
  b.addEventListener("click", () => busy(b, () => onClick(b)));
  return b;
}

function reasonRow(view, order, action, label, placeholder) {
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
}

async function assignBox(view, order) {
  const { items } = await get(`/organizations/${order.organization.id}/volunteers`);
  const assigned = new Set(order.volunteers.map((v) => v.id));
  const boxes = items.map((v) => h("label", null, h("input", { type: "checkbox", value: v.id, checked: assigned.has(v.id) }), " ", v.display_name));
  const list = h("div", { class: "choices", "data-testid": "volunteers" }, boxes);
  return h(
    "div",
    { class: "card" },
    h("h3", null, "指派志愿者"),
    list,
    h(
      "div",
      { style: "margin-top:8px" },
      button("指派", "do-assign", async () => {
        const ids = Array.from(list.querySelectorAll("input:checked")).map((i) => i.value);
        if (!ids.length) return toast("请选择志愿者", { error: true });
        await post(`/orders/${order.id}/assign`, { volunteer_ids: ids });
        toast("已指派");
        view.refresh();
      }),
    ),
  );
}

function resolveBox(view, order) {
  const note = h("textarea", { "data-testid": "resolve-note", placeholder: "办理情况，如：已上门陪伴两小时" });
  const picker = photoPicker("proof", { uploadFn: upload });
  return h(
    "div",
    { class: "card", "data-testid": "resolve-form" },
    h("h3", null, "回单"),
    note,
    h("label", { class: "field" }, "凭证照片"),
    picker.element,
    h(
      "div",
      { style: "margin-top:8px" },
      button("提交回单", "do-resolve", async () => {
        await post(`/orders/${order.id}/resolve`, { note: note.value.trim(), proof_ids: picker.ids });
        toast("已回单，等待居民确认");
        view.refresh();
      }),
    ),
  );
}

export async function orderDetail(view, id) {
  view.title("工单");
  view.back("#/org");
  const order = await get(`/orders/${id}`);
  const can = new Set(order.allowed_actions);
  const quick = [];
  if (can.has("take")) {
    quick.push(
      button("接单", "do-take", async () => {
        await post(`/orders/${order.id}/take`, {});
        toast("已接单，可查看联系方式");
        view.refresh();
      }),
    );
  }
  if (can.has("start")) quick.push(button("开始办理", "do-start", async () => (await post(`/orders/${order.id}/start`, {}), view.refresh())));
  if (can.has("resume")) quick.push(button("继续办理", "do-resume", async () => (await post(`/orders/${order.id}/resume`, {}), view.refresh())));
  return h(
    "div",
    { "data-testid": "order-detail", "data-state": order.state },
    orderCard(order),
    h(
      "div",
      { class: "card" },
      h("div", { class: "row between" }, h("span", { class: "muted small" }, order.due_at ? `时限 ${fmtTime(order.due_at)}` : "无时限"), slaTag(order)),
      order.contact_masked ? h("div", { class: "muted small" }, "接单后可见居民的详细地址和电话") : null,
      quick.length ? h("div", { class: "row", style: "margin-top:8px" }, quick) : null,
      can.has("return") ? reasonRow(view, order, "return", "退单", "退单原因") : null,
      can.has("suspend") ? reasonRow(view, order, "suspend", "暂停", "等待居民补充什么") : null,
    ),
    can.has("assign") ? await assignBox(view, order) : null,
    can.has("resolve") ? resolveBox(view, order) : null,
    resultCard(order),
    h("div", { class: "card" }, h("h3", null, "进度"), timeline(order)),
  );
}

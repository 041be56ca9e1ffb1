// The resident (居民): place an order, see my orders, follow one in plain words, confirm and rate.
import { get, idempotencyKey, post, upload } from "./api.js";
import { busy, field, fmtTime, h, photoPicker, photos, stateBadge, timeline, toast } from "./ui.js";

const LEVELS = [
  [5, "很满意"],
  [4, "满意"],
  [3, "较满意"],
  [2, "基本满意"],
  [1, "不满意"],
];
const TAGS = ["准时", "耐心", "专业", "热情"];

export async function myOrders(view) {
  view.title("我的工单");
  const page = await get("/orders", { limit: 50 });
  const newButton = h("button", { class: "block", "data-testid": "new-order", type: "button", onclick: () => view.go("#/resident/new") }, "＋ 我要点单");
  return h(
    "div",
    { "data-testid": "my-orders" },
    newButton,
    h("div", { class: "section-title" }, "我的工单"),
    page.items.length
      ? page.items.map((o) =>
          h(
            "a",
            { class: "list-item", href: `#/resident/orders/${o.id}`, "data-order-id": o.id },
            h("div", { class: "row between" }, h("span", { class: "title" }, o.category_name), stateBadge(o)),
            h("div", { class: "desc" }, o.description),
            h("div", { class: "muted small" }, `${o.number} · ${fmtTime(o.created_at)}`),
          ),
        )
      : h("div", { class: "empty" }, "还没有工单，点上方按钮点单"),
  );
}

function questionControl(q) {
  const name = `q-${q.code}`;
  if (q.datatype === "single_choice") {
    return h("select", { name, "data-question": q.code }, h("option", { value: "" }, "请选择"), q.choices.map((c) => h("option", { value: c.key }, c.label)));
  }
  if (q.datatype === "multi_choice") {
    return h(
      "div",
      { class: "choices", "data-question": q.code },
      q.choices.map((c) => h("label", null, h("input", { type: "checkbox", value: c.key, name }), " ", c.label)),
    );
  }
  if (q.datatype === "number") {
    return h("input", { type: "number", name, "data-question": q.code, placeholder: q.hint || "", min: q.min, max: q.max });
  }
  if (q.datatype === "datetime") return h("input", { type: "datetime-local", name, "data-question": q.code });
  if (q.datatype === "text") return h("textarea", { name, "data-question": q.code, placeholder: q.hint || "" });
  return h("input", { type: "text", name, "data-question": q.code, placeholder: q.hint || "" });
}

function answerOf(q, box) {
  if (q.datatype === "multi_choice") {
    const keys = Array.from(box.querySelectorAll(`input[name="q-${q.code}"]:checked`)).map((i) => i.value);
    return keys.length ? keys : undefined;
  }
  const value = box.querySelector(`[name="q-${q.code}"]`).value.trim();
  if (!value) return undefined;
  if (q.datatype === "datetime") return `${value.length === 16 ? value + ":00" : value}+08:00`;
  return value;
}

export async function newOrder(view) {
  view.title("我要点单");
  view.back("#/resident");
  const { items: categories } = await get("/catalog/categories");
  const kinds = [...new Map(categories.map((c) => [c.service_kind, c.service_kind_label])).entries()];
  const category = h(
    "select",
    { name: "category", "data-testid": "category" },
    h("option", { value: "" }, "请选择服务"),
    kinds.map(([kind, label]) =>
      h("optgroup", { label }, categories.filter((c) => c.service_kind === kind).map((c) => h("option", { value: c.code }, c.name))),
    ),
  );
  const about = h("div", { class: "muted small" });
  const questions = h("div", { "data-testid": "questions" });
  category.addEventListener("change", () => {
    const chosen = categories.find((c) => c.code === category.value);
    about.textContent = chosen ? `${chosen.service_kind_label} · ${chosen.description}` : "";
    questions.replaceChildren(...(chosen ? chosen.questions.flatMap((q) => field(q.label, questionControl(q), { required: q.required })) : []));
  });
  const user = view.session.user;
  const description = h("textarea", { name: "description", "data-testid": "description", placeholder: "请描述需要什么帮助" });
  const address = h("input", { type: "text", name: "address", "data-testid": "address", placeholder: "小区、楼栋、单元、门牌号" });
  const contactName = h("input", { type: "text", name: "contact_name", "data-testid": "contact-name", value: user.real_name || "" });
  const contactPhone = h("input", { type: "tel", name: "contact_phone", "data-testid": "contact-phone", placeholder: "11 位手机号" });
  const picker = photoPicker("photos", { uploadFn: upload });
  const key = idempotencyKey(); // one per form: a retried submit never places a second order
  const submit = h("button", { class: "block", "data-testid": "submit-order", type: "button" }, "提交");
  submit.addEventListener("click", () =>
    busy(submit, async () => {
      const chosen = categories.find((c) => c.code === category.value);
      if (!chosen) return toast("请选择服务", { error: true });
      const answers = {};
      for (const q of chosen.questions) {
        const value = answerOf(q, questions);
        if (value !== undefined) answers[q.code] = value;
      }
      const order = await post(
        "/orders",
        {
          category: chosen.code,
          answers,
          description: description.value.trim(),
          address: address.value.trim(),
          contact_name: contactName.value.trim(),
          contact_phone: contactPhone.value.trim(),
          photo_ids: picker.ids,
        },
        { "Idempotency-Key": key },
      );
      toast("已提交，社区会尽快受理");
      view.go(`#/resident/orders/${order.id}`);
    }),
  );
  return h(
    "div",
    { class: "card", "data-testid": "order-form" },
    ...field("服务", category, { required: true }),
    about,
    questions,
    ...field("需求描述", description, { required: true }),
    ...field("地址", address, { required: true }),
    ...field("联系人", contactName, { required: true }),
    ...field("联系电话", contactPhone, { required: true }),
    ...field("照片（可选）", picker.element),
    submit,
  );
}

export function orderCard(order) {
  return h(
    "div",
    { class: "card", "data-testid": "order-card" },
    h("div", { class: "row between" }, h("h2", null, order.category_name), stateBadge(order)),
    h("div", { class: "muted small" }, `${order.number} · ${order.service_kind_label}`),
    h("p", null, order.description),
    h(
      "dl",
      { class: "kv" },
      h("dt", null, "地址"),
      h("dd", { "data-testid": "address" }, order.address),
      h("dt", null, "联系人"),
      h("dd", null, `${order.contact_name} ${order.contact_phone}`),
      order.organization ? [h("dt", null, "服务组织"), h("dd", { "data-testid": "organization" }, order.organization.name)] : null,
      order.volunteers.length ? [h("dt", null, "志愿者"), h("dd", null, order.volunteers.map((v) => v.name).join("、"))] : null,
    ),
    order.photos.length ? photos(order.photos, "order-photos") : null,
  );
}

export function resultCard(order) {
  if (!order.resolution_note && !order.proof.length && !order.rating) return null;
  return h(
    "div",
    { class: "card", "data-testid": "result" },
    h("h3", null, "办理结果"),
    order.resolution_note ? h("p", null, order.resolution_note) : null,
    order.proof.length ? photos(order.proof, "proof-photos") : null,
    order.rating
      ? h("div", { "data-testid": "rating" }, `评价：${order.rating.level_label}`, order.rating.tags.length ? `（${order.rating.tags.join("、")}）` : "", order.rating.comment ? ` ${order.rating.comment}` : "")
      : null,
  );
}

function rateForm(view, order, action) {
  const levels = h(
    "div",
    { class: "stars", "data-testid": "rating-levels" },
    LEVELS.map(([value, label]) => h("label", null, h("input", { type: "radio", name: "level", value, checked: value === 5 }), h("span", null, label))),
  );
  const tags = h("div", { class: "choices" }, TAGS.map((t) => h("label", null, h("input", { type: "checkbox", value: t }), " ", t)));
  const comment = h("textarea", { "data-testid": "rating-comment", placeholder: "说说这次服务（可选）" });
  const button = h("button", { class: "block", "data-testid": `do-${action}`, type: "button" }, action === "confirm" ? "确认办结并评价" : "提交评价");
  button.addEventListener("click", () =>
    busy(button, async () => {
      await post(`/orders/${order.id}/${action}`, {
        level: Number(levels.querySelector("input:checked").value),
        tags: Array.from(tags.querySelectorAll("input:checked")).map((i) => i.value),
        comment: comment.value.trim(),
      });
      toast("感谢您的评价");
      view.refresh();
    }),
  );
  return h("div", { class: "card", "data-testid": "rate-form" }, h("h3", null, action === "confirm" ? "服务已完成，请确认并评价" : "评价这次服务"), levels, tags, comment, button);
}

function reasonAction(view, order, action, label, placeholder) {
  const reason = h("input", { type: "text", placeholder, "data-testid": `${action}-reason` });
  const button = h("button", { class: "danger small", "data-testid": `do-${action}`, type: "button" }, label);
  button.addEventListener("click", () =>
    busy(button, async () => {
      await post(`/orders/${order.id}/${action}`, { reason: reason.value.trim() });
      view.refresh();
    }),
  );
  return h("div", { class: "row" }, h("div", { class: "grow" }, reason), button);
}

export async function orderDetail(view, id) {
  view.title("工单详情");
  view.back("#/resident");
  const order = await get(`/orders/${id}`);
  const actions = order.allowed_actions;
  return h(
    "div",
    { "data-testid": "order-detail", "data-state": order.state },
    orderCard(order),
    resultCard(order),
    actions.includes("confirm") ? rateForm(view, order, "confirm") : null,
    actions.includes("rate") && !order.rating ? rateForm(view, order, "rate") : null,
    h("div", { class: "card" }, h("h3", null, "进度"), timeline(order, { forResident: true })),
    actions.includes("reopen") ? h("div", { class: "card" }, h("h3", null, "对结果有异议？"), reasonAction(view, order, "reopen", "申请重办", "原因")) : null,
    actions.includes("cancel") ? h("div", { class: "card" }, reasonAction(view, order, "cancel", "取消工单", "取消原因")) : null,
  );
}

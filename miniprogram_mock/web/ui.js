// Small DOM helpers shared by every screen. Text always goes in through textContent (h), never innerHTML.
import { photoUrl } from "./api.js";

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let toastTimer = null;
export function toast(message, { error = false } = {}) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = error ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), error ? 4000 : 2000);
}

// The API's field names as the mock's forms label them, for a 422's messages; a field not named here shows
// its message alone. Nobody reads "contact_phone".
const FIELD_NAMES = {
  category: "服务",
  description: "需求描述",
  address: "地址",
  contact_name: "联系人",
  contact_phone: "联系电话",
  photo_ids: "照片",
  proof_ids: "凭证照片",
  reason: "原因",
  comment: "评价",
  note: "说明",
  type: "代办事项",
  errand_type: "代办事项",
  slot_id: "预约时段",
  date: "预约日期",
  agent_id: "代办员",
  eligibility_note: "资格初审",
  materials: "材料",
  missing: "缺少的材料",
  handover: "交接单",
  number: "交接单编号",
  handed_over_by: "交件人",
  received_by: "收件人",
  cash_received_fen: "收到的购药现金",
  office: "办理部门",
  receipt_number: "回执号",
  amount_fen: "每月保障金额",
  certificate_number: "证书编号",
  valid_until: "有效期至",
  amount_spent_fen: "实付",
  change_returned_fen: "退还现金",
  receipt_photo_id: "购药票据照片",
  items: "药品清单",
};

function fieldName(key, parent) {
  return FIELD_NAMES[key] || FIELD_NAMES[String(key).split(".")[0]] || parent;
}

/** A 422's per-field messages ({field: [message]}, nested for lists), each with the field's Chinese name. */
function fieldMessages(details, name = null) {
  if (typeof details === "string") return [name ? `${name}：${details}` : details];
  if (Array.isArray(details)) return details.flatMap((d) => fieldMessages(d, name));
  if (details && typeof details === "object") {
    return Object.entries(details).flatMap(([key, value]) => fieldMessages(value, fieldName(key, name)));
  }
  return [];
}

/**
 * Show an API error the way the mini-program would: its Chinese message, and for a 422 what is wrong with
 * each field. Other details are for programs (a 409's state and allowed_actions): its message says it.
 */
export function showError(err) {
  let message = err.message || String(err);
  const body = err.body || {};
  if (err.status === 422 || body.code === "validation_failed") {
    const parts = [...new Set(fieldMessages(body.details))].filter((part) => part !== message);
    if (parts.length) message += "（" + parts.join("；") + "）";
  }
  toast(message, { error: true });
}

/** Run an action from a button: disable it meanwhile, report errors, return the result (or undefined). */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

// Beijing time, whatever zone the phone or browser is in, as the API's times (+08:00) and the inbox's text
// read: a browser's own zone showed 03:11 on 12-02 as 12月1日 19:11.
const BEIJING = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  month: "numeric",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

export function fmtTime(iso) {
  if (!iso) return "";
  const part = Object.fromEntries(BEIJING.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${part.month}月${part.day}日 ${part.hour}:${part.minute}`;
}

function duration(ms) {
  const minutes = Math.max(1, Math.round(Math.abs(ms) / 60000));
  if (minutes < 60) return `${minutes}分钟`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours}小时`;
  return `${Math.round(hours / 24)}天`;
}

/**
 * SLA colour of an order or errand: red when overdue, yellow from the clock's warning time (warn_at, 黄牌预警)
 * on, green otherwise; none when no clock runs.
 */
export function sla(item, now = Date.now()) {
  if (!item.due_at) return { level: "none", label: "无时限" };
  const left = Date.parse(item.due_at) - now;
  if (item.is_overdue || left <= 0) return { level: "red", label: `已超时${duration(left)}` };
  if (item.warn_at && Date.parse(item.warn_at) <= now) return { level: "yellow", label: `即将到期 剩${duration(left)}` };
  return { level: "green", label: `剩余${duration(left)}` };
}

export function slaTag(order) {
  const s = sla(order);
  return h("span", { class: `sla ${s.level}`, "data-sla": s.level }, s.label);
}

export function stateBadge(order) {
  return h("span", { class: `badge state-${order.state}`, "data-state": order.state }, order.state_label);
}

// The timeline in plain words. "{居民}" becomes "您" on the resident's own screens.
const PLAIN = {
  place: "{居民}提交了服务需求",
  accept: "社区受理了需求",
  reject: "社区未予受理",
  dispatch: "社区已安排服务组织",
  redispatch: "社区改派了服务组织",
  take: "服务组织已接单",
  return: "服务组织退回了工单，社区将重新安排",
  assign: "服务组织安排了志愿者",
  start: "开始上门服务",
  suspend: "暂停办理，等待补充信息",
  resume: "继续办理",
  request_extension: "服务组织申请延期",
  approve_extension: "社区同意延期",
  deny_extension: "社区未同意延期",
  resolve: "服务已完成，等待{居民}确认",
  confirm: "{居民}确认办结并作了评价",
  rate: "{居民}评价了服务",
  auto_close: "超过确认期限，系统自动办结",
  reopen: "{居民}对结果有异议，申请重办",
  cancel: "工单已取消",
  supervise: "已列入督办",
  warning: "即将到期（黄牌预警）",
  overdue: "已超时（红牌）",
};
const WHO = {
  owner: "居民",
  resident: "居民",
  grid_worker: "网格员",
  secretary: "社区书记",
  street_admin: "街道",
  org_admin: "服务组织",
  volunteer: "志愿者",
  system: "系统",
};

export function timelineSentence(event, { forResident = false } = {}) {
  let text = PLAIN[event.action] || event.action_label || event.action;
  text = text.replaceAll("{居民}", forResident ? "您" : "居民");
  if (event.action === "confirm" || event.action === "rate") {
    if (event.data && event.data.label) text += `：${event.data.label}`;
  }
  return text;
}

export function timeline(order, { forResident = false } = {}) {
  return h(
    "ol",
    { class: "timeline", "data-testid": "timeline" },
    order.timeline.map((e) =>
      h(
        "li",
        { "data-action": e.action },
        h("div", null, timelineSentence(e, { forResident })),
        e.note ? h("div", { class: "muted" }, e.note) : null,
        h("div", { class: "when" }, `${fmtTime(e.at)} · ${e.by_system ? "系统" : WHO[e.actor_role] || e.actor_role}`),
      ),
    ),
  );
}

/** Thumbnails of photos the API serves with the bearer token: the small rendition (a phone's data plan),
 * the whole photo once tapped. */
export function photos(list, testid) {
  const box = h("div", { class: "photos", "data-testid": testid });
  for (const p of list || []) {
    const img = h("img", { alt: "照片", title: "点击查看原图" });
    img.addEventListener("click", () =>
      photoUrl(p.url)
        .then((url) => window.open(url, "_blank"))
        .catch(() => toast("原图加载失败")),
    );
    box.append(img);
    photoUrl(p.small_url || p.url)
      .then((url) => (img.src = url))
      .catch(() => (img.alt = "图片加载失败"));
  }
  return box;
}

export function field(label, control, { required = false } = {}) {
  return [h("label", { class: "field" }, label, required ? h("span", { class: "req" }, " *") : null), control];
}

/** A file input that uploads each chosen photo at once and keeps their ids. */
export function photoPicker(testid, { uploadFn, max = 6 }) {
  const ids = [];
  const preview = h("div", { class: "photos", "data-testid": `${testid}-preview` });
  const status = h("div", { class: "muted small" }, `最多 ${max} 张，JPG/PNG/WebP`);
  const input = h("input", {
    type: "file",
    accept: "image/png,image/jpeg,image/webp",
    multiple: true,
    "data-testid": testid,
    onchange: async () => {
      for (const file of Array.from(input.files)) {
        if (ids.length >= max) break;
        status.textContent = "上传中…";
        try {
          const uploaded = await uploadFn(file);
          ids.push(uploaded.id);
          preview.append(h("img", { alt: file.name, src: URL.createObjectURL(file), "data-upload-id": uploaded.id }));
        } catch (err) {
          showError(err);
        }
      }
      status.textContent = `已上传 ${ids.length} 张`;
      input.value = "";
    },
  });
  return { element: h("div", null, input, status, preview), ids };
}

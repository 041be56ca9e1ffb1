// The mock's shell: a hash router, the navigation bar, a tab bar per role, the sign-in picker and "我的".
import { ApiError, get, session, signIn, signOut } from "./api.js";
import * as errands from "./errands.js";
import * as organization from "./organization.js";
import * as resident from "./resident.js";
import * as secretary from "./secretary.js";
import { busy, h, showError } from "./ui.js";

// The demo people (backend/demo.py): fixed openids, so anyone can act as any of them.
const COMMUNITIES = ["阳光社区", "和平社区", "东湖社区", "新华社区"];
const ORGANIZATIONS = [
  "夕阳红养老服务中心",
  "邻里守望志愿服务队",
  "安居家电维修服务社",
  "阳光法律援助工作站",
  "心语心理咨询中心",
  "和美调解委员会",
  "红十字应急救援队",
  "巧手家政服务合作社",
];
const RESIDENTS = 60;

const TABS = {
  resident: [
    ["#/resident", "我的工单", "☰"],
    ["#/resident/new", "我要点单", "＋"],
    ["#/errands", "红色代办", "★"],
    ["#/me", "我的", "☺"],
  ],
  organization: [
    ["#/org", "工单", "☰"],
    ["#/me", "我的", "☺"],
  ],
  secretary: [
    ["#/secretary", "派单台", "☰"],
    ["#/secretary/supervisions", "督办", "！"],
    ["#/errands", "红色代办", "★"],
    ["#/me", "我的", "☺"],
  ],
  agent: [
    ["#/errands", "代办队列", "★"],
    ["#/me", "我的", "☺"],
  ],
};
const HOME = { resident: "#/resident", organization: "#/org", secretary: "#/secretary", agent: "#/errands" };

const ROUTES = [
  [/^#\/resident$/, resident.myOrders],
  [/^#\/resident\/new$/, resident.newOrder],
  [/^#\/resident\/orders\/([\w-]+)$/, resident.orderDetail],
  [/^#\/org$/, organization.board],
  [/^#\/org\/orders\/([\w-]+)$/, organization.orderDetail],
  [/^#\/secretary$/, secretary.board],
  [/^#\/secretary\/orders\/([\w-]+)$/, secretary.orderDetail],
  [/^#\/secretary\/supervisions$/, secretary.supervisions],
  [/^#\/errands$/, errands.home],
  [/^#\/errands\/new$/, errands.newErrand],
  [/^#\/errands\/e\/([\w-]+)$/, errands.errandDetail],
  [/^#\/me$/, me],
];

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

let renderCount = 0;

async function render() {
  const token = ++renderCount;
  const hash = location.hash || "#/";
  const current = session();
  const screen = document.getElementById("screen");
  const back = document.getElementById("nav-back");
  const view = {
    title: (text) => (document.getElementById("nav-title").textContent = text),
    back: (target) => {
      back.hidden = !target;
      back.onclick = target ? () => go(target) : null;
    },
    refresh: () => render(),
    go,
    session: current,
  };
  view.back(null);
  if (!current || hash === "#/" || hash === "#") {
    if (current && hash !== "#/") return go(HOME[current.mode] || "#/");
    setChrome(null);
    view.title("三单 · 选择演示身份");
    screen.replaceChildren(peoplePicker());
    return;
  }
  setChrome(current);
  for (const [pattern, screenFn] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      const content = await screenFn(view, ...match.slice(1));
      if (token === renderCount) {
        screen.replaceChildren(content);
        screen.scrollTop = 0;
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        await signOut();
        return go("#/");
      }
      if (token === renderCount) {
        screen.replaceChildren(h("div", { class: "empty" }, err.message || String(err)));
        showError(err);
      }
    }
    return;
  }
  go(HOME[current.mode] || "#/");
}

function setChrome(current) {
  const tabbar = document.getElementById("tabbar");
  const who = document.getElementById("nav-who");
  if (!current) {
    tabbar.hidden = true;
    who.textContent = "";
    return;
  }
  who.textContent = current.user.real_name || current.user.nickname || current.openid;
  const hash = location.hash;
  const tabs = TABS[current.mode] || [];
  tabbar.replaceChildren(
    ...tabs.map(([href, label, icon]) =>
      h(
        "a",
        { href, class: hash === href ? "active" : "", "data-tab": href },
        h("span", { class: "icon" }, icon),
        label,
      ),
    ),
  );
  tabbar.hidden = tabs.length === 0;
}

function option(value, label) {
  return h("option", { value }, label);
}

function peoplePicker() {
  const residentSelect = h(
    "select",
    { "data-testid": "person-resident" },
    Array.from({ length: RESIDENTS }, (_, i) => option(`demo-resident-${i + 1}`, `居民 ${i + 1} 号（${COMMUNITIES[Math.floor(((i + 1) % 12) / 3)]}）`)),
  );
  const orgSelect = h(
    "select",
    { "data-testid": "person-organization" },
    h("optgroup", { label: "组织负责人（接单、指派、回单）" }, ORGANIZATIONS.map((name, i) => option(`demo-org-admin-${i + 1}`, `${name} 负责人`))),
    h(
      "optgroup",
      { label: "志愿者（办理、回单）" },
      ORGANIZATIONS.flatMap((name, i) => [1, 2, 3].map((v) => option(`demo-volunteer-${i + 1}-${v}`, `${name} 志愿者${v}`))),
    ),
  );
  const secretarySelect = h(
    "select",
    { "data-testid": "person-secretary" },
    COMMUNITIES.map((name, i) => option(`demo-secretary-${i + 1}`, `${name}书记`)),
  );

  const agentSelect = h(
    "select",
    { "data-testid": "person-agent" },
    COMMUNITIES.map((name, i) => option(`demo-agent-${i + 1}`, `${name}代办员`)),
  );

  function group(mode, title, hint, select) {
    const button = h("button", { class: "block", "data-testid": `signin-${mode}`, type: "button" }, "登录");
    button.addEventListener("click", () =>
      busy(button, async () => {
        await signIn(select.value, mode);
        go(HOME[mode]);
      }),
    );
    return h("div", { class: "card group", "data-group": mode }, h("h2", null, title), h("div", { class: "muted" }, hint), select, button);
  }

  return h(
    "div",
    { class: "people" },
    h(
      "div",
      { class: "card muted small" },
      "演示数据里的每个人都有固定的微信 openid。登录与小程序相同：先向（模拟的）微信取 wx.login 的 code，再调用 /api/v1/auth/login。",
    ),
    group("resident", "居民", "点单、查看进度、确认并评价", residentSelect),
    group("organization", "社会组织", "待接工单、接单、指派、办理、回单", orgSelect),
    group("secretary", "社区书记", "派单台、受理、推荐派单、督办", secretarySelect),
    group("agent", "红色代办（代办员）", "代办队列、收件、递交、登记结果、送还", agentSelect),
  );
}

async function me(view) {
  view.title("我的");
  const [user, inbox] = await Promise.all([get("/me"), get("/notifications", { limit: 10 })]);
  const switcher = h("button", { class: "block secondary", "data-testid": "switch-person", type: "button" }, "切换身份");
  switcher.addEventListener("click", async () => {
    await signOut();
    go("#/");
  });
  return h(
    "div",
    null,
    h(
      "div",
      { class: "card" },
      h("h2", null, user.real_name || user.nickname),
      h(
        "dl",
        { class: "kv" },
        h("dt", null, "身份"),
        h("dd", null, user.roles.map((r) => r.role_label).join("、") || "—"),
        h("dt", null, "手机"),
        h("dd", null, user.phone || "未绑定"),
        h("dt", null, "openid"),
        h("dd", null, view.session.openid),
      ),
      switcher,
    ),
    h("div", { class: "section-title" }, `消息（未读 ${inbox.unread_count}）`),
    inbox.items.length
      ? inbox.items.map((n) => h("div", { class: "card" }, h("div", { class: "row between" }, h("b", null, n.title), h("span", { class: "badge" }, n.status_label)), h("div", { class: "muted" }, n.body)))
      : h("div", { class: "empty" }, "暂无消息"),
  );
}

window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (event) => showError(event.reason || "出错了"));
render();

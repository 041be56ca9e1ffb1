// 红色代办 (red proxy errands): the place for the errand screens.
//
// The errands API (/api/v1/errands, /api/v1/appointments) is being built now; when it lands, add here:
//   - resident: book an appointment (网上预约), book an errand by type (低保申请, 代购药品, 残疾证办理),
//     see its steps and the materials still missing, rate it when completed;
//   - proxy agent (代办员, openids demo-agent-N): the errand queue and one screen per step
//     (accept, materials collected with the hand-over slip, lodged with a receipt number, result, returned);
//   - secretary: assign agents, follow completion (代办完成率) and on-time rates.
// Register each screen in ROUTES (app.js), add an "errands" mode to TABS/HOME and enable the 代办员 card
// in the sign-in picker. Every call goes through api.js with the bearer token, like the order screens.
import { h } from "./ui.js";

export async function home(view) {
  view.title("红色代办");
  return h(
    "div",
    { class: "card coming", "data-testid": "errands-coming" },
    h("div", { class: "big" }, "★"),
    h("h2", null, "红色代办 即将上线"),
    h("p", { class: "muted" }, "低保申请、代购药品、残疾证办理等事项，将由社区代办员全程代办，进度可随时查看。"),
  );
}

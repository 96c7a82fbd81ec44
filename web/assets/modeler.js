/*
 * The process modeler: bpmn-js Modeler with the properties panel and the
 * Camunda Platform 7 provider (our forms and scripts are camunda: extensions).
 * Bundled by esbuild at set-up (`npm run build`) into build/modeler/modeler.js.
 *
 * The page holds <div id="modeler" data-xml=… data-save=… data-problems=…
 * data-revision=…>; saving posts the XML with the revision it was based on
 * (a stale save comes back 409), checking pins each problem on its element.
 */
import BpmnModeler from "bpmn-js/lib/Modeler";
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
  CamundaPlatformPropertiesProviderModule,
} from "bpmn-js-properties-panel";
import CamundaBehaviorsModule from "camunda-bpmn-js-behaviors/lib/camunda-platform";
import camundaModdle from "camunda-bpmn-moddle/resources/camunda.json";

// Properties SpiffWorkflow ignores: showing them would promise behaviour we do not run.
const HIDDEN_GROUPS = new Set([
  "CamundaPlatform__AsynchronousContinuations",
  "CamundaPlatform__JobExecution",
  "CamundaPlatform__ExecutionListener",
  "CamundaPlatform__TaskListener",
  "CamundaPlatform__Input",
  "CamundaPlatform__Output",
  "CamundaPlatform__ConnectorInput",
  "CamundaPlatform__ConnectorOutput",
  "CamundaPlatform__Implementation",
  "CamundaPlatform__ExternalTask",
  "CamundaPlatform__FieldInjection",
  "CamundaPlatform__UserAssignment",
  "CamundaPlatform__CandidateStarter",
  "CamundaPlatform__Tasklist",
  "CamundaPlatform__HistoryCleanup",
  "CamundaPlatform__InMapping",
  "CamundaPlatform__OutMapping",
  "CamundaPlatform__InMappingPropagation",
  "CamundaPlatform__OutMappingPropagation",
  "CamundaPlatform__CallActivity",
  "CamundaPlatform__BusinessKey",
  "CamundaPlatform__StartInitiator",
  "CamundaPlatform__ProcessVariables",
  "CamundaPlatform__Errors",
]);

function HideUnsupportedProvider(propertiesPanel) {
  // A low priority runs last, after the bpmn and Camunda providers added their groups.
  propertiesPanel.registerProvider(10, this);
}
HideUnsupportedProvider.prototype.getGroups = function () {
  return (groups) => groups.filter((group) => !HIDDEN_GROUPS.has(group.id));
};
HideUnsupportedProvider.$inject = ["propertiesPanel"];

const HideUnsupportedModule = {
  __init__: ["hideUnsupportedProvider"],
  hideUnsupportedProvider: ["type", HideUnsupportedProvider],
};

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function say(status, text, kind) {
  status.textContent = text;
  status.className = "flash " + (kind || "info");
}

async function start() {
  const container = document.getElementById("modeler");
  if (!container) return;
  const status = document.getElementById("modeler-status");
  const list = document.getElementById("problems");
  const texts = JSON.parse(container.dataset.texts || "{}");
  const modeler = new BpmnModeler({
    container,
    propertiesPanel: { parent: "#properties" },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,
      CamundaPlatformPropertiesProviderModule,
      CamundaBehaviorsModule,
      HideUnsupportedModule,
    ],
    moddleExtensions: { camunda: camundaModdle },
  });
  window.itsmModeler = modeler; // for the browser tests and the console
  let revision = Number(container.dataset.revision);
  let pinned = [];

  const response = await fetch(container.dataset.xml, { credentials: "same-origin" });
  await modeler.importXML(await response.text());
  modeler.get("canvas").zoom("fit-viewport", "auto");

  function unpin() {
    const canvas = modeler.get("canvas");
    modeler.get("overlays").remove({ type: "problem" });
    pinned.forEach((id) => canvas.removeMarker(id, "has-problem"));
    pinned = [];
    list.textContent = "";
  }

  function pin(problems) {
    unpin();
    const registry = modeler.get("elementRegistry");
    const canvas = modeler.get("canvas");
    problems.forEach((problem) => {
      const item = document.createElement("li");
      item.textContent = (problem.element ? problem.element + ": " : "") + problem.message;
      // A warning (a missing translation) does not stop the deployment.
      const warning = problem.level === "warning";
      if (warning) item.className = "warning";
      item.dataset.element = problem.element || "";
      list.appendChild(item);
      const element = problem.element && registry.get(problem.element);
      if (!element) return;
      canvas.addMarker(problem.element, "has-problem");
      pinned.push(problem.element);
      const badge = document.createElement("div");
      badge.className = warning ? "problem-badge warning" : "problem-badge";
      badge.title = problem.message;
      badge.textContent = "!";
      modeler.get("overlays").add(problem.element, "problem", {
        position: { top: -12, right: 12 },
        html: badge,
      });
      item.addEventListener("click", () => modeler.get("selection").select(element));
    });
  }

  async function save() {
    const { xml } = await modeler.saveXML({ format: true });
    const reply = await fetch(container.dataset.save + "?revision=" + revision, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/xml", "X-CSRFToken": csrfToken() },
      body: xml,
    });
    const body = await reply.json();
    if (!reply.ok) {
      say(status, body.error || texts.failed, "error");
      return false;
    }
    revision = body.revision;
    container.dataset.revision = String(revision);
    document.querySelectorAll("input[name=revision]").forEach((i) => (i.value = revision));
    say(status, texts.saved.replace("%(revision)s", revision), "success");
    return true;
  }

  async function check() {
    if (!(await save())) return;
    const reply = await fetch(container.dataset.problems, { credentials: "same-origin" });
    const body = await reply.json();
    pin(body.problems);
    say(
      status,
      body.deployable ? texts.clean : texts.problems.replace("%(n)s", body.problems.length),
      body.deployable ? "success" : "error",
    );
    container.dataset.checked = body.deployable ? "clean" : "problems";
  }

  document.getElementById("save").addEventListener("click", save);
  document.getElementById("check").addEventListener("click", check);
  container.dataset.ready = "true";
}

start().catch((error) => {
  const status = document.getElementById("modeler-status");
  if (status) say(status, String(error), "error");
});

/*
 * The API reference at /api/docs: Swagger UI (npm package swagger-ui-dist) showing
 * the OpenAPI document the server generates from its routes.
 * Bundled by esbuild at set-up (`npm run build`) into build/apidocs/apidocs.js, with
 * Swagger UI's stylesheet beside it as apidocs.css.
 *
 * The page holds <div id="swagger-ui" data-url="/api/v1/openapi.json">; the script
 * reads the address from there, so the page needs no inline script (CSP script-src
 * 'self'). Nothing is loaded from elsewhere: no validator badge, no remote config.
 */
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-bundle.js";
import "swagger-ui-dist/swagger-ui.css";

function start() {
  const container = document.getElementById("swagger-ui");
  if (!container) return;
  window.itsmApiDocs = SwaggerUIBundle({
    url: container.dataset.url,
    domNode: container,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // Swagger UI would otherwise send the document to a public validator service.
    validatorUrl: null,
    // Only this origin's document: a `?url=` or `?configUrl=` in the address is ignored.
    queryConfigEnabled: false,
    // The token a reader types under "Authorize" stays in this tab only.
    persistAuthorization: false,
    onComplete: () => {
      container.dataset.ready = "true";
    },
  });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}

//! The OpenAPI 3.1 document of every route longrun serves, generated from
//! the handlers' `#[utoipa::path]` attributes and the wire types' schemas,
//! and served at `/openapi.json`. Routes served under two spellings (Face's
//! two base paths, Dev Center's three dev-box actions, Sphere's image with
//! and without `/metadata`, Google's routes under each scope collection)
//! are documented once and repeated here, the same way the routers
//! register them.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required};

use crate::{api, dialect};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "longrun",
        description = "A durable status service for long-running operations: a native producer API and \
                       wire-compatible Azure Sphere, Dev Center and Face dialects, and Google's \
                       google.longrunning.Operations over HTTP/JSON."
    ),
    paths(
        api::health::healthz,
        crate::server::metrics::readyz,
        crate::server::metrics::serve_metrics,
        api::operations::create_operation,
        api::list::list_operations,
        api::operations::get_operation,
        api::operations::wait_operation,
        api::operations::patch_operation,
        api::operations::post_action,
        api::events::operation_events,
        api::events::scope_events,
        api::me::get_me,
        api::webhooks::create_webhook,
        api::webhooks::list_webhooks,
        api::webhooks::delete_webhook,
        api::webhooks::list_deliveries,
        api::leases::claim_lease,
        api::leases::lease_action,
        dialect::sphere::get_typed,
        dialect::sphere::get_generic,
        dialect::sphere::initiate::upload_image,
        dialect::sphere::resources::get_image_metadata,
        dialect::devcenter::get_operation_status,
        dialect::devcenter::initiate::delete_dev_box,
        dialect::devcenter::initiate::dev_box_action,
        dialect::devcenter::resources::get_dev_box,
        dialect::face::get_operation_status,
        dialect::face::initiate::take_snapshot,
        dialect::face::initiate::apply_snapshot,
        dialect::face::resources::get_snapshot,
        dialect::face::resources::get_person_group,
        dialect::face::resources::get_large_person_group,
        dialect::face::resources::get_face_list,
        dialect::face::resources::get_large_face_list,
        dialect::google::rest::get_operation,
        dialect::google::rest::list_operations,
        dialect::google::rest::cancel_operation,
        dialect::google::rest::wait_operation,
        dialect::google::rest::delete_operation,
    ),
    // The error bodies are referenced by the shared response sets, which
    // (unlike response tuples) do not register the schemas they name.
    components(schemas(
        api::wire::OperationPatch,
        dialect::devcenter::wire::ErrorResponse,
        dialect::face::wire::ApiError,
        dialect::sphere::wire::PublicApiErrorDetails,
        dialect::google::wire::ErrorResponse,
    )),
    modifiers(&Security, &Aliases)
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT of a trusted issuer (RS256/ES256), or an API key (lr_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "subscriptionKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(dialect::face::KEY_HEADER))),
        );
    }
}

/// Repeats the paths served under more than one spelling.
struct Aliases;

impl Modify for Aliases {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let paths = &mut doc.paths.paths;
        let face: Vec<_> = paths
            .iter()
            .filter(|(path, _)| path.starts_with("/face/v1.0/"))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        for (path, mut item) in face {
            for operation in operations(&mut item) {
                operation.operation_id = operation.operation_id.take().map(|id| format!("{id}Preview"));
            }
            paths.insert(path.replacen("/face/v1.0/", "/face/v1.0-preview/", 1), item);
        }
        let heartbeat = "/v1/leases/{leaseId}:heartbeat";
        if let Some(mut item) = paths.get(heartbeat).cloned() {
            for operation in operations(&mut item) {
                operation.operation_id = Some("Leases_Complete".into());
                operation.summary =
                    Some("Completes a lease with a terminal result (a merge patch with a terminal state).".into());
                let schema = Ref::from_schema_name("Longrun.OperationPatch");
                let content = ContentBuilder::new().schema(Some(schema)).build();
                operation.request_body = Some(
                    RequestBodyBuilder::new()
                        .content("application/json", content)
                        .required(Some(Required::True))
                        .build(),
                );
            }
            paths.insert(heartbeat.replace(":heartbeat", ":complete"), item);
        }
        if let Some(mut item) = paths.get(heartbeat).cloned() {
            for operation in operations(&mut item) {
                operation.operation_id = Some("Leases_Release".into());
                operation.summary = Some(
                    "Hands the operation back (NotStarted) for another worker at once, as a lapse would; no body."
                        .into(),
                );
                operation.request_body = None;
            }
            paths.insert(heartbeat.replace(":heartbeat", ":release"), item);
        }
        let metadata = "/v2/tenants/{tenantId}/images/{imageId}/metadata";
        if let Some(mut item) = paths.get(metadata).cloned() {
            for operation in operations(&mut item) {
                operation.operation_id = Some("Image_GetAtResourceLocation".into());
            }
            paths.insert(metadata.trim_end_matches("/metadata").into(), item);
        }
        let google: Vec<_> = paths
            .iter()
            .filter(|(path, _)| path.starts_with("/v1/projects/{project}/operations"))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        for (path, item) in google {
            // A tenant is a UUID; an account name is Cognitive Services' (2 to 64 characters).
            let tenant = ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                .build();
            let account = ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-zA-Z0-9][a-zA-Z0-9-_.]{1,63}$"))
                .build();
            for (collection, parameter, suffix, schema) in
                [("tenants", "tenant", "Tenant", tenant), ("accounts", "account", "Account", account)]
            {
                let mut copy = item.clone();
                for operation in operations(&mut copy) {
                    operation.operation_id = operation.operation_id.take().map(|id| format!("{id}{suffix}"));
                    for parameter_of in operation.parameters.iter_mut().flatten().filter(|p| p.name == "project") {
                        parameter_of.name = parameter.into();
                        parameter_of.schema = Some(schema.clone().into());
                    }
                }
                paths.insert(path.replacen("projects/{project}", &format!("{collection}/{{{parameter}}}"), 1), copy);
            }
        }
        let start = "/projects/{projectName}/users/{userId}/devboxes/{devBoxName}:start";
        if let Some(item) = paths.get(start).cloned() {
            for action in ["stop", "restart"] {
                let mut copy = item.clone();
                for operation in operations(&mut copy) {
                    let name = format!("{}{}", action[..1].to_uppercase(), &action[1..]);
                    operation.operation_id = Some(format!("DevBoxes_{name}DevBox"));
                }
                paths.insert(start.replace(":start", &format!(":{action}")), copy);
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes"))
}

/// `GET /openapi.json`.
pub async fn serve_document() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error::CoreError;

    #[test]
    fn documents_every_route_and_the_seed_schemas() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/v1/operations",
            "/v1/operations/{id}",
            "/v1/operations/{id}:cancel",
            "/v2/tenants/{tenantId}/operations/{operationId}",
            "/v2/tenants/{tenantId}/operationTypes/{operationType}/operations/{operationId}",
            "/v2/tenants/{tenantId}/images",
            "/projects/{projectName}/operationstatuses/{operationId}",
            "/projects/{projectName}/users/{userId}/devboxes/{devBoxName}",
            "/projects/{projectName}/users/{userId}/devboxes/{devBoxName}:restart",
            "/face/v1.0/operations/{operationId}",
            "/face/v1.0-preview/operations/{operationId}",
            "/face/v1.0-preview/snapshots/{snapshotId}/apply",
            "/face/v1.0-preview/snapshots/{snapshotId}",
            "/face/v1.0/largefacelists/{largeFaceListId}",
            "/v2/tenants/{tenantId}/images/{imageId}",
            "/v2/tenants/{tenantId}/images/{imageId}/metadata",
            "/v1/leases",
            "/v1/leases/{leaseId}:heartbeat",
            "/v1/leases/{leaseId}:complete",
            "/v1/leases/{leaseId}:release",
            "/v1/projects/{project}/operations",
            "/v1/tenants/{tenant}/operations/{operationId}",
            "/v1/accounts/{account}/operations/{operationId}:wait",
        ] {
            assert!(paths.contains_key(path), "{path} is not documented");
        }
        let schemas = &doc["components"]["schemas"];
        let sphere = &schemas["Sphere.Operation"]["properties"];
        assert_eq!(sphere["State"]["enum"], serde_json::json!([0, 1, 2, 3, 4]));
        assert_eq!(sphere["OperationType"]["enum"].as_array().unwrap().len(), 12);
        assert!(sphere["CreatedDateUTC"].is_object());
        let devcenter = &schemas["DevCenter.OperationStatus"]["properties"];
        for field in
            ["id", "name", "status", "resourceId", "startTime", "endTime", "percentComplete", "properties", "error"]
        {
            assert!(devcenter[field].is_object(), "DevCenter.OperationStatus.{field}");
        }
        let face = &schemas["Face.OperationStatus"]["properties"];
        for field in ["status", "createdTime", "lastActionTime", "finishedTime", "resourceLocation", "message"] {
            assert!(face[field].is_object(), "Face.OperationStatus.{field}");
        }
        assert!(schemas["Azure.Core.Foundations.ErrorResponse"].is_object());
        assert!(schemas["Face.APIError"].is_object());
        assert!(schemas["Sphere.PublicApiErrorDetails"]["properties"]["ErrorCode"].is_object());
    }

    /// Every documented operation, as (path, method, operation).
    fn operations(doc: &serde_json::Value) -> Vec<(&str, &str, &serde_json::Value)> {
        let paths = doc["paths"].as_object().unwrap();
        let each =
            paths.iter().flat_map(|(path, item)| item.as_object().unwrap().iter().map(move |(m, o)| (path, m, o)));
        each.map(|(path, method, operation)| (path.as_str(), method.as_str(), operation)).collect()
    }

    #[test]
    fn every_route_documents_the_fronts_refusals_and_every_body_route_408_and_413() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        for (path, method, operation) in operations(&doc) {
            let responses = &operation["responses"];
            for status in ["429", "431", "500"] {
                assert!(responses[status].is_object(), "{method} {path} lacks {status}");
            }
            assert!(responses["429"]["headers"]["Retry-After"].is_object(), "{method} {path}: 429 without Retry-After");
            assert!(responses["431"]["content"].is_object(), "{method} {path}: the 431 is in the envelope");
            if operation.get("requestBody").is_some() {
                for status in ["408", "413"] {
                    assert!(responses[status].is_object(), "{method} {path} takes a body but lacks {status}");
                }
            }
            if operation.get("security").is_some() {
                for status in ["401", "503"] {
                    assert!(responses[status].is_object(), "{method} {path} lacks {status}");
                }
            }
        }
    }

    #[test]
    fn the_documented_refusals_are_what_each_dialect_sends() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        for (path, method, operation) in operations(&doc) {
            for (status, core) in [
                ("429", CoreError::TooManyRequests { retry_after_secs: 3 }),
                ("500", CoreError::Internal(anyhow::anyhow!("boom"))),
                ("431", CoreError::HeadTooLarge { limit: 1 }),
                ("408", CoreError::BodyTimeout { timeout_secs: 1 }),
            ] {
                let documented = &operation["responses"][status];
                if documented.is_null() {
                    continue; // 408: only routes with a body
                }
                let sent = dialect::error_for_path(path, core);
                assert_eq!(sent.status().as_str(), status);
                let sent_type = sent.headers()[header::CONTENT_TYPE].to_str().unwrap();
                let media = sent_type.split(';').next().unwrap();
                assert!(documented["content"][media].is_object(), "{method} {path} {status}: sends {sent_type}");
                for name in documented["headers"].as_object().unwrap().keys() {
                    // Front adds the request id to every response after this.
                    if name != "x-ms-request-id" {
                        assert!(sent.headers().contains_key(name.as_str()), "{method} {path} {status}: no {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_reference_names_a_schema_in_the_document() {
        let text = document();
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let prefix = "\"$ref\": \"#/components/schemas/";
        for (at, _) in text.match_indices(prefix) {
            let name = text[at + prefix.len()..].split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name} is referenced but not defined");
        }
    }
}

//! Reading a route group's table back out of its OpenAPI document: the
//! groups built with utoipa-axum serve exactly what their document lists,
//! so the document is the table the attack suite enumerates.

use axum::http::Method;

/// `(method, path)` of every operation an OpenAPI document lists.
pub fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(Method, String)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PATCH, &item.patch),
            (Method::PUT, &item.put),
            (Method::DELETE, &item.delete),
        ] {
            if op.is_some() {
                out.push((method, path.clone()));
            }
        }
    }
    out
}

//! Passkey sign-in through the system browser (RFC 8252): the webview has no
//! WebAuthn, so the app opens the cloud's sign-in page in a browser and waits
//! on a one-shot loopback listener (`127.0.0.1:<random port>`) for the code,
//! with PKCE (S256) and a `state` it checks, then exchanges the code.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use url::Url;
use waymark_protocol::signin::{CodeVerifier, DESKTOP_CLIENT_ID, TokenResponse, random_token};

use crate::cloud::Cloud;
use crate::error::AppError;

/// Opens an address for the person: the system browser in the app, a
/// `WAYMARK_BROWSER` command in tests and the demo.
pub trait Browser: Send + Sync {
    fn open(&self, url: &str) -> Result<(), AppError>;
}

/// `WAYMARK_BROWSER`: runs `program args… URL` and does not wait for it.
pub struct CommandBrowser(pub Vec<String>);

impl Browser for CommandBrowser {
    fn open(&self, url: &str) -> Result<(), AppError> {
        let (program, args) = self
            .0
            .split_first()
            .ok_or_else(|| AppError::Browser("WAYMARK_BROWSER is empty".into()))?;
        let mut child = std::process::Command::new(program)
            .args(args)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| AppError::Browser(format!("{program}: {e}")))?;
        // Reap it when it ends so it leaves no zombie behind.
        std::thread::spawn(move || child.wait());
        Ok(())
    }
}

/// Whether the page should open on "create an account" or "sign in".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    SignIn,
    CreateAccount,
}

/// One sign-in attempt, waiting for the browser to come back.
pub struct Attempt {
    listener: TcpListener,
    redirect_uri: String,
    verifier: CodeVerifier,
    state: String,
    authorize_url: Url,
}

impl Attempt {
    pub async fn prepare(cloud: &Cloud, start: Start) -> Result<Self, AppError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| AppError::Browser(format!("could not listen on 127.0.0.1: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| AppError::Browser(e.to_string()))?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let verifier = CodeVerifier::generate();
        let state = random_token(16);
        let mut authorize_url = cloud.url("/authorize");
        authorize_url
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", DESKTOP_CLIENT_ID)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &verifier.s256_challenge())
            .append_pair("code_challenge_method", "S256");
        if start == Start::CreateAccount {
            authorize_url
                .query_pairs_mut()
                .append_pair("prompt", "create");
        }
        Ok(Self {
            listener,
            redirect_uri,
            verifier,
            state,
            authorize_url,
        })
    }

    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// Waits for the browser's return (or `cancel`, or `timeout`), then
    /// exchanges the code for tokens.
    pub async fn finish(
        self,
        cloud: &Cloud,
        session_name: &str,
        cancel: &Notify,
        timeout: Duration,
    ) -> Result<TokenResponse, AppError> {
        let code = tokio::select! {
            code = self.wait_for_code() => code?,
            () = cancel.notified() => return Err(AppError::SignInCancelled),
            () = tokio::time::sleep(timeout) => return Err(AppError::SignInTimedOut),
        };
        cloud
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("client_id", DESKTOP_CLIENT_ID),
                ("code_verifier", self.verifier.as_str()),
                ("session_name", session_name),
            ])
            .await
    }

    /// Answers every connection; only `/callback` with our `state` ends the wait.
    async fn wait_for_code(&self) -> Result<String, AppError> {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            match self.answer(stream).await {
                Some(Ok(code)) => return Ok(code),
                Some(Err(e)) => return Err(e),
                None => continue,
            }
        }
    }

    async fn answer(&self, mut stream: TcpStream) -> Option<Result<String, AppError>> {
        let target = tokio::time::timeout(Duration::from_secs(5), read_target(&mut stream))
            .await
            .ok()??;
        let url = Url::parse("http://127.0.0.1").ok()?.join(&target).ok()?;
        if url.path() != "/callback" {
            respond(
                &mut stream,
                404,
                "Not found",
                "This address is only for signing in to Waymark.",
            )
            .await;
            return None;
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(self.state.as_str()) {
            // Not the sign-in this app started: refuse it and keep waiting.
            respond(
                &mut stream,
                400,
                "Sign-in not recognised",
                "This sign-in was not started by the Waymark app on this computer, so it was ignored.",
            )
            .await;
            return None;
        }
        if param("error").is_some() {
            respond(
                &mut stream,
                200,
                "Sign-in cancelled",
                "You can close this tab and return to Waymark.",
            )
            .await;
            return Some(Err(AppError::SignInCancelled));
        }
        let code = param("code")?;
        respond(
            &mut stream,
            200,
            "Signed in to Waymark",
            "You can close this tab and return to the Waymark app.",
        )
        .await;
        Some(Ok(code))
    }
}

/// Reads an HTTP request head and returns its target (`/callback?...`).
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > 8192 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = std::str::from_utf8(&buf).ok()?;
    let mut parts = head.lines().next()?.split(' ');
    (parts.next()? == "GET").then_some(())?;
    let target = parts.next()?;
    target.starts_with('/').then(|| target.to_owned())
}

async fn respond(stream: &mut TcpStream, status: u16, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
         <body style=\"font:16px system-ui;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\n\
         content-length: {}\r\ncache-control: no-store\r\nreferrer-policy: no-referrer\r\n\
         content-security-policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

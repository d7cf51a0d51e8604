// Package link makes and checks the links a reminder carries, so that the notify role (which
// puts them in messages) and the api role (which serves /r/) share them without importing
// each other (DESIGN.md, the package table).
//
// Signer signs and verifies the expiring links of the redirect link mode, <PublicURL>/r/<token>,
// whose token names an inquiry and a reminder stage under an HMAC; FormToken and VerifyForm
// make and check the anti-forgery token of the /r/ page's "Continue verification" form, and
// ID names a link for the single-use mark. HostedFlowURL builds the
// Persona hosted-flow URL that resumes an inquiry with a session token (PERSONA.md §6).
//
// Tokens and hosted-flow URLs with a session token are secrets: never log them.
package link

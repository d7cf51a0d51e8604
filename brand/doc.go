// Package brand says who a reminder speaks for. A deployment may serve several companies
// (B2B2C): each Brand has a name, logo, primary colour, support contact, postal footer and
// sender, and may bring its own e-mail templates and default locale. A Set, loaded from the
// brands file (RESUMER_BRANDS_FILE, YAML or JSON; Load), picks the brand of an inquiry by its
// template id or its reference-id prefix. The notify role puts the brand in the subject,
// body and footer of its e-mails; the api role on the /r/ pages.
//
// Brands are configuration, checked once at start-up: every error names the line of the
// brands file it is about.
package brand

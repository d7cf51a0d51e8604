package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// spec is api/openapi.yaml, loaded and validated once per test binary.
var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		// The /r/ pages are HTML; read them as plain text for the schema (a string).
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		loader := openapi3.NewLoader()
		spec.doc, spec.err = loader.LoadFromFile("openapi.yaml")
		if spec.err != nil {
			return
		}
		if spec.err = spec.doc.Validate(loader.Context); spec.err != nil {
			return
		}
		spec.router, spec.err = legacy.NewRouter(spec.doc)
	})
	if spec.err != nil {
		t.Fatalf("load api/openapi.yaml: %v", spec.err)
	}
	return spec.doc, spec.router
}

// validating wraps the API's mux so that every response any test receives is validated
// against api/openapi.yaml: status (an undescribed one fails), headers and body. Responses
// the mux itself makes for paths outside the API (404, 405) are not the API's and are skipped.
func validating(t *testing.T, h http.Handler) http.Handler {
	_, router := loadSpec(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())

		route, params, err := router.FindRoute(r)
		if err != nil || (rec.Code == http.StatusNotFound && rec.Header().Get("Cache-Control") == "") {
			return // not routed to the API
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
			Status:                 rec.Code,
			Header:                 rec.Header(),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		in.SetBodyBytes(rec.Body.Bytes())
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s %s answered %d, which api/openapi.yaml does not describe: %v", r.Method, route.Path, rec.Code, err)
		}
	})
}

// TestOpenAPIDescribesServer checks that api/openapi.yaml describes exactly the routes the
// server registers, every problem code with every status it is sent with, and every status
// of the /r/ pages. The validating wrapper of every other test checks real responses.
func TestOpenAPIDescribesServer(t *testing.T) {
	doc, _ := loadSpec(t)
	routes := []string{RouteInquiry, RouteSessions, RouteReport, RouteRedirect, "HEAD /r/{token}", RouteLinkContinue}
	for _, route := range routes {
		method, path, _ := strings.Cut(route, " ")
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s is not described", route)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !slices.Contains(routes, method+" "+path) {
				t.Errorf("%s %s is described but not served", method, path)
			}
		}
	}

	problem := doc.Components.Schemas["Problem"].Value
	var described []string
	for _, v := range problem.Properties["code"].Value.Enum {
		described = append(described, v.(string))
	}
	var codes []string
	for code := range codeStatuses {
		codes = append(codes, string(code))
	}
	slices.Sort(described)
	slices.Sort(codes)
	if !slices.Equal(described, codes) {
		t.Errorf("Problem.code enum %v, server codes %v", described, codes)
	}
	for code, statuses := range codeStatuses {
		for _, status := range statuses {
			if !describesProblem(doc, status, code) {
				t.Errorf("no operation describes code %s with status %d", code, status)
			}
		}
	}

	get, post := doc.Paths.Find("/r/{token}").Get, doc.Paths.Find("/r/{token}").Post
	for _, p := range []page{pageContinue, pageInvalidLink, pageLinkExpired, pageLinkUsed, pageFinished,
		pageInquiryExpired, pageUnavailable} {
		if get.Responses.Status(p.status) == nil {
			t.Errorf("page %s (%d) is not described on GET /r/{token}", p.name, p.status)
		}
	}
	for _, p := range []page{pageFormExpired, pageInvalidLink, pageLinkExpired, pageLinkUsed, pageFinished,
		pageInquiryExpired, pageTooManyAttempts, pageUnavailable} {
		if post.Responses.Status(p.status) == nil {
			t.Errorf("page %s (%d) is not described on POST /r/{token}", p.name, p.status)
		}
	}
}

// describesProblem reports whether some operation has a status response whose problem
// schema admits code.
func describesProblem(doc *openapi3.T, status int, code Code) bool {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			resp := op.Responses.Value(strconv.Itoa(status))
			if resp == nil || resp.Value == nil {
				continue
			}
			mt := resp.Value.Content.Get("application/problem+json")
			if mt == nil || mt.Schema == nil {
				continue
			}
			for _, part := range mt.Schema.Value.AllOf {
				if c := part.Value.Properties["code"]; c != nil && len(c.Value.Enum) > 0 &&
					slices.Contains(c.Value.Enum, any(string(code))) {
					return true
				}
			}
		}
	}
	return false
}

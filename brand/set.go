package brand

import "strings"

// Delimiters are the characters at which a reference id may continue after one of a brand's
// ReferencePrefixes.
const Delimiters = "-_:/."

// Set is the brands of one deployment and the rule that picks one per inquiry. The zero
// Set (and a nil *Set) has no brands and gives Neutral for every inquiry. A Set is not
// modified after Load or New and is safe for concurrent use.
type Set struct {
	brands []Brand
	// def is the index of the brand for inquiries no rule selects.
	def int
}

// Neutral is the brand of a deployment without a brands file: no name, logo or footer, so
// the messages speak for no one in particular (as before brands existed).
var Neutral = &Brand{ID: "default"}

// New returns a Set of brands (validated, ids unique; a Locale must be one of locales) whose
// default is the brand with id def (the first when def is empty). See Load for the errors.
func New(brands []Brand, def string, locales []string) (*Set, error) {
	f := &File{Default: def, Brands: brands}
	return f.set(locales)
}

// For returns the brand of an inquiry: the brand listing its template id, else the brand
// with the longest reference prefix covering its reference id, else the default. It never
// returns nil.
func (s *Set) For(templateID, referenceID string) *Brand {
	if s == nil || len(s.brands) == 0 {
		return Neutral
	}
	if templateID != "" {
		for i := range s.brands {
			for _, t := range s.brands[i].Templates {
				if t == templateID {
					return &s.brands[i]
				}
			}
		}
	}
	best, bestLen := -1, -1
	for i := range s.brands {
		for _, p := range s.brands[i].ReferencePrefixes {
			if len(p) > bestLen && covers(p, referenceID) {
				best, bestLen = i, len(p)
			}
		}
	}
	if best >= 0 {
		return &s.brands[best]
	}
	return &s.brands[s.def]
}

// ByID returns the brand with this id, or nil.
func (s *Set) ByID(id string) *Brand {
	if s == nil {
		return nil
	}
	for i := range s.brands {
		if s.brands[i].ID == id {
			return &s.brands[i]
		}
	}
	return nil
}

// All returns the brands in file order (none for a nil Set). The caller must not modify them.
func (s *Set) All() []Brand {
	if s == nil {
		return nil
	}
	return s.brands
}

// covers reports whether prefix covers ref: equal, or ref continues prefix after one of
// Delimiters (or prefix ends in one).
func covers(prefix, ref string) bool {
	switch {
	case ref == prefix:
		return true
	case !strings.HasPrefix(ref, prefix):
		return false
	}
	return strings.IndexByte(Delimiters, prefix[len(prefix)-1]) >= 0 || strings.IndexByte(Delimiters, ref[len(prefix)]) >= 0
}

package strictjson

// DocumentFields is Document and then Fields (path "") for a document that
// must be an object, notObject making the error for one of another JSON
// type (see Kind). A well-formed object is scanned once instead of twice
// (Document, then Fields); anything else takes Document and Fields, for
// their errors. A spec of a thousand members is 110 kB, read at every
// apply.
func DocumentFields(data []byte, limit int, fail Fail, notObject func(kind string) error, fn FieldFunc) error {
	if len(data) <= limit {
		var buf [8]member
		if members, ok := wellFormedObject(data, buf[:]); ok {
			return walkMembers(members, "", fail, fn)
		}
	}
	raw, err := Document(data, limit, fail)
	if err != nil {
		return err
	}
	if k := Kind(raw); k != "an object" {
		return notObject(k)
	}
	return Fields(raw, "", fail, fn)
}

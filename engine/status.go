package engine

import "container/list"

// statusLRU remembers the Status of the last max finished requests.
type statusLRU struct {
	max int
	ll  *list.List // of Status, most recently finished at the front
	m   map[string]*list.Element
}

func newStatusLRU(max int) statusLRU {
	return statusLRU{max: max, ll: list.New(), m: make(map[string]*list.Element)}
}

func (l *statusLRU) add(st Status) {
	if el, ok := l.m[st.ID]; ok {
		el.Value = st
		l.ll.MoveToFront(el)
		return
	}
	l.m[st.ID] = l.ll.PushFront(st)
	for l.ll.Len() > l.max {
		old := l.ll.Back()
		l.ll.Remove(old)
		delete(l.m, old.Value.(Status).ID)
	}
}

func (l *statusLRU) get(id string) (Status, bool) {
	el, ok := l.m[id]
	if !ok {
		return Status{}, false
	}
	return el.Value.(Status), true
}

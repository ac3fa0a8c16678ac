package main

import "github.com/pop3d/pop3d/daemon"

// observers hands each event of the engine to several observers in turn.
type observers []daemon.Observer

var _ daemon.Observer = observers(nil)

// engineObserver is what daemon.Config.Observer gets for list: nil when
// nothing watches (no cost in the engine), the one observer when there is
// one.
func engineObserver(list observers) daemon.Observer {
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

// Connect implements daemon.Observer.
func (l observers) Connect(s *daemon.Session) {
	for _, o := range l {
		o.Connect(s)
	}
}

// Refuse implements daemon.Observer.
func (l observers) Refuse(s *daemon.Session, r daemon.Refusal) {
	for _, o := range l {
		o.Refuse(s, r)
	}
}

// Login implements daemon.Observer.
func (l observers) Login(s *daemon.Session, e daemon.Login) {
	for _, o := range l {
		o.Login(s, e)
	}
}

// Command implements daemon.Observer.
func (l observers) Command(s *daemon.Session, c daemon.Command) {
	for _, o := range l {
		o.Command(s, c)
	}
}

// Update implements daemon.Observer.
func (l observers) Update(s *daemon.Session, u daemon.Update) {
	for _, o := range l {
		o.Update(s, u)
	}
}

// Disconnect implements daemon.Observer.
func (l observers) Disconnect(s *daemon.Session, d daemon.Disconnect) {
	for _, o := range l {
		o.Disconnect(s, d)
	}
}

package bridge_test

import (
	"fmt"

	"github.com/setgate/setgate/bridge"
)

func ExampleSubjects_For() {
	s, err := bridge.NewSubjects("secevent")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.For("acme", "https://schemas.openid.net/secevent/caep/event-type/session-revoked", nil))
	fmt.Println(s.For("acme", "https://schemas.openid.net/secevent/risc/event-type/account-disabled", nil))
	fmt.Println(s.For("acme", "https://example.com/events/user-locked", nil))
	fmt.Println(s.For("acme", "https://example.com/events/user-locked",
		map[string]string{"https://example.com/events/user-locked": "acme.user-locked"}))
	// Output:
	// secevent.caep.session-revoked.acme
	// secevent.risc.account-disabled.acme
	// secevent.ext.user-locked-c7f12e77.acme
	// secevent.acme.user-locked.acme
}

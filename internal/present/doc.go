// Package present shows an operator what setgate received and decided,
// for the "setgate tail" and "setgate verify" commands: one line per
// stored event or announced rejection (the subject identifier and the
// payload's telling members in a few characters, or the message as JSON
// with where it was routed), and the verdict of one verification with the
// decoded header, claims and events, as text or JSON.
//
// It decodes leniently, so a SET or message that does not verify still
// shows what it says; it never decides anything.
package present

"""One router per resource, each thin: parse, call a service, render."""

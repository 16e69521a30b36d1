"""The web view for the Office and leaders (`/ui/`): server-rendered pages over the reports
service's maintained state, with people, roles and sessions of its own (`users`, `auth`).
`pages.mount` adds its routes to the reports app."""

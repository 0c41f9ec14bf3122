package admin

// deviceRoutes lists the device-identity routes (registry, CA, enrollment,
// revocation). They live in their own file so the device work can grow
// without touching the core route table.
func (s *Server) deviceRoutes() []route { return nil }

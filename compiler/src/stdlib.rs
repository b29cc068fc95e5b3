//! The standard library's tool signatures (`stdlib/*.aos`), embedded in the
//! binary so that `use std.NAME` works wherever `aosc` is installed.

/// Every module: (name, source).
pub const MODULES: &[(&str, &str)] = &[
    ("email", include_str!("../../stdlib/email.aos")),
    ("file", include_str!("../../stdlib/file.aos")),
    ("http", include_str!("../../stdlib/http.aos")),
    ("memory", include_str!("../../stdlib/memory.aos")),
    ("shell", include_str!("../../stdlib/shell.aos")),
    ("sql", include_str!("../../stdlib/sql.aos")),
];

/// The source of `std.NAME`, if there is such a module.
pub fn module(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, src)| *src)
}

/// The path under which diagnostics show a stdlib module.
pub fn display_path(name: &str) -> String {
    format!("<std>/{name}.aos")
}

//! Reading `MAIL_TEMPLATES_DIR`: an override is a file named like a built-in template.

use std::path::Path;

use super::{BUILT_IN, TemplateError};

/// The override at `file`, or `None` when there is none.
pub(super) fn read_override(file: &Path) -> Result<Option<String>, TemplateError> {
    match std::fs::read_to_string(file) {
        Ok(source) => Ok(Some(source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TemplateError::Read {
            file: file.to_owned(),
            source,
        }),
    }
}

pub(super) fn warn_unknown_files(dir: &Path) -> Result<(), TemplateError> {
    let dir_error = |source| TemplateError::Dir {
        dir: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let name = entry.map_err(dir_error)?.file_name();
        let known = name
            .to_str()
            .is_some_and(|name| BUILT_IN.iter().any(|(known, _)| *known == name));
        if !known {
            tracing::warn!(
                dir = %dir.display(),
                file = %name.to_string_lossy(),
                "not a mail template name: ignored"
            );
        }
    }
    Ok(())
}

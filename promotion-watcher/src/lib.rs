//! Promotion watcher: promote a unit's artifact between repository channels when a stage passes, withdraw it when the stage is invalidated.

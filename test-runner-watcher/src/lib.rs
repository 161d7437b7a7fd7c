//! Test-runner watcher: run a registered suite on an event, turn its JUnit XML into receipts.

//! Ticket watcher: open a Jira ticket on a failing receipt, and turn its approval into a receipt.

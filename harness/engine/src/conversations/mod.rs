//! Conversations: a check is a [`Conversation`](conversation::Conversation)
//! value, a list of [`steps`] by domain; a [`session`] runs one against a
//! target and records a [`transcript`]. [`check`] says what a check and a
//! suite are. Suites import this layer and the ones below it.

pub mod check;
pub mod conversation;
pub mod session;
pub mod steps;
pub mod transcript;

//! The WeChat side: the API client, message XML and crypto, and the demo simulator. Leaves:
//! nothing here knows our HTTP types.

pub mod client;
pub mod crypto;
pub mod message;
pub mod replay;
pub mod sim;
pub mod sim_account;
pub mod token;

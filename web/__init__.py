"""The admin web panel's static files (plain ES modules and CSS), served by gateway/admin."""

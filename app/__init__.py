"""The Netbuilder application: main window, docks, training controller, live plots."""

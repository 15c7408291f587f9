"""Tables, figures and pages made from the runs' results."""

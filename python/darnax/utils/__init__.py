"""Small helpers shared by the model stack: the perceptron rule, typing aliases, argument checks."""

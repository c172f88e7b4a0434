#l
  x  x Ñ
# batch 12: extra explanation and unanswerable items written after the first pass
g='n24-05157'
A(g,'explanation',"According to engineer Lionel Orama, why did one toppled transmission line black out all of Puerto Rico in April 2018?","Lionel Orama, an electrical engineer and University of Puerto Rico professor, said what most likely happened is that two main power plants, AES and Aguirre, immediately unplugged from the power system to protect their large generators after the transmission line was toppled.",text=['unplugged'])
g='n24-02885'
A(g,'explanation',"Why did no one notice the sleeping Piedmont baggage handler before American Flight 363 took off?","A person familiar with the American incident in Kansas City but unauthorized to speak publicly about it said the napping employee was overlooked because no bags were loaded into the forward cargo hold and the door was closed.",text=['no bags'])
g='n24-04431'
A(g,'explanation',"Where does the warm, moist air that feeds US tornado-producing storms come from?","Low pressure systems in the US pull warm, moist air from the Gulf of Mexico and cool, dry air aloft from the Rocky Mountains or the High Desert in the southwest.",text=['Gulf of Mexico'])
g='n24-01676'
U(g,"How much did each of the Golden State Warriors' 2022 championship rings cost?","The article describes the rings' diamonds and secret compartment but gives no price.")
g='n24-05910'
U(g,"How many people visited Yellowstone National Park in 2022?","Both national-park articles give 2023 figures (Yellowstone 4,501,382); no 2022 visitor count for Yellowstone appears in the corpus.")
g='n24-02735'
U(g,"Who gave the speech inducting Eminem into the Rock and Roll Hall of Fame in November 2022?","The May 2022 article announces the class and asks whether Eminem will attend; the ceremony and presenters are not reported.")
g='n24-01329'
U(g,"Who won the Oscar for best supporting actress in March 2023?","The article covers the BAFTAs (Kerry Condon won the BAFTA) and says the Oscars would follow on March 12; no Oscar winners are given in the corpus.")
g='n24-05236'
U(g,"At what price did Chemours shares open on their first day of trading in July 2015?","The article says shares began trading after the spinoff but gives no share price.")
